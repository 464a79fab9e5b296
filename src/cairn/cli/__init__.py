"""The `cairn` command: thin Click commands over the library."""
