"""The model registry: Client, model URIs, stages, aliases, and load_model."""
