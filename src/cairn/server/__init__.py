"""The Cairn server: the REST API (`/api/v1/`), the MLflow-compatible subset
(`/api/2.0/mlflow…`), on FastAPI. An entry point like the CLI: handlers parse, call the
library, render; the error → HTTP table is `errors.py`. FastAPI is imported only here."""
