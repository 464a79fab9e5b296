"""Remotes: object databases reached through fsspec, opened from configuration.

``open_remote(config, name)`` builds the remote's ``cairn.objects.odb.ObjectDB``;
``cairn.objects.transfer`` moves the objects that are missing between it and the cache.
"""
