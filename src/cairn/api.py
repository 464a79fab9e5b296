"""Read tracked artifacts from Python, as `dvc.api` does: any file of any revision.

    import cairn
    with cairn.api.open("models/classifier.pkl", rev="model-v1") as f:
        blob = f.read()
    text = cairn.api.read("data/labels.csv", repo="https://github.com/org/repo", rev="v2")

The file is found in git at `rev` (its pointer file, a `cairn.lock` output, or git
itself) and its bytes come from a local cache, else the repository's default remote
(or `remote`), verified against their digest. No workspace is touched.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, Literal, overload

from cairn.errors import UserError

__all__ = ["open", "read"]

_MODES = ("r", "rt", "rb")


@contextmanager
def open(  # the name dvc.api users know
    path: str, repo: str | None = None, rev: str | None = None, remote: str | None = None,
    mode: str = "rb", encoding: str | None = None,
) -> Iterator[IO[Any]]:
    """A file object of `path` as of `rev` (None: the workspace's pointer files, or HEAD
    of a cloned `repo`). `repo`: None (the repository here), a local path or a git URL.
    `mode`: "rb" (bytes) or "r" (text; `encoding` default UTF-8)."""
    from cairn.commands.data import open_artifact

    _check_mode(mode)
    with open_artifact(path, repo=repo, rev=rev, remote=remote) as f:
        if "b" in mode:
            yield f
        else:
            text = io.TextIOWrapper(f, encoding=encoding or "utf-8")
            try:
                yield text
            finally:
                text.detach()


@overload
def read(path: str, repo: str | None = ..., rev: str | None = ..., remote: str | None = ...,
         mode: Literal["r", "rt"] = ..., encoding: str | None = ...) -> str: ...


@overload
def read(path: str, repo: str | None = ..., rev: str | None = ..., remote: str | None = ...,
         *, mode: Literal["rb"], encoding: str | None = ...) -> bytes: ...


def read(path: str, repo: str | None = None, rev: str | None = None, remote: str | None = None,
         mode: str = "r", encoding: str | None = None) -> str | bytes:
    """The whole content of `path` as of `rev`: text for mode "r", bytes for "rb"."""
    with open(path, repo, rev, remote, mode, encoding) as f:
        data: str | bytes = f.read()
        return data


def _check_mode(mode: str) -> None:
    if mode not in _MODES:
        raise UserError(f"mode {mode!r} is not supported; cairn.api reads only: "
                        f"{', '.join(repr(m) for m in _MODES)}")
