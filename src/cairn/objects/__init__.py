"""Content-addressed objects: hashing, object database, manifests, links, stat cache."""
