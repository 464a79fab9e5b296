"""Content-addressed objects: hashing, the object database, directory manifests, links, stat cache."""
