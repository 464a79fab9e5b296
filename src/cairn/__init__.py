"""Cairn: version ML data and models by content, next to git.

The public Python API grows here as capabilities land; heavy modules are imported only
when a name that needs them is used, so ``import cairn`` stays fast.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cairn")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
