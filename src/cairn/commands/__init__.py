"""The operations a user asks for, with keyword arguments, returning result objects.

The CLI, the git hooks and (soon) the server call these and nothing below them.
"""
