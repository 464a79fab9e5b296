"""Use cases on the workspace: add, status, commit, checkout, push/pull, gc, fsck, du."""
