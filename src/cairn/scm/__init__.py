"""Git: revisions, blobs at a revision, hooks."""
