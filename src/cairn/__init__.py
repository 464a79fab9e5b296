"""Cairn: version ML data and models by content, next to git.

The public Python API grows here as capabilities land; heavy modules are imported only
when a name that needs them is used, so ``import cairn`` stays fast.
"""

from __future__ import annotations

__version__ = "0.1.0"  # the single source: pyproject.toml reads it from here

__all__ = ["__version__"]
