"""The pipeline: stages declared in ``cairn.yaml`` or, unchanged, ``dvc.yaml``.

Value types shared by every pipeline module, and the loaders; the file format is in
docs/formats.md, "Pipeline files (cairn.yaml / dvc.yaml)". Pipeline files are read at
the repository root and in subdirectories, as DVC does; a stage from
``sub/dir/dvc.yaml`` is named ``sub/dir/dvc.yaml:train``.
Parsing, templating and checks live in `cairn.pipeline.parse`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cairn.pipeline.parse import Source

PIPELINE_FILES = ("cairn.yaml", "dvc.yaml")
# Never searched for pipeline files: git, Cairn's and DVC's own dirs, caches, venvs.
_SKIP_DIRS = frozenset({"__pycache__", "node_modules"})
_POINTER_SUFFIXES = (".cairn", ".dvc")


@dataclass(frozen=True)
class Output:
    """An out as a stage declares it (what to produce, and how to keep it). What it held
    when the stage last ran is a `cairn.project.tracked.TrackedPath` in cairn.lock."""

    path: str                 # repo-root-relative posix path (wdir applied); dirs allowed
    cache: bool = True        # False: not stored in the cache, kept in git (metrics.json)
    persist: bool = False     # True: not deleted before the stage runs
    kind: str = "out"         # "out" | "metrics" | "plots"
    # plot props (x, y, title, template…) and other flags, as written
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class ParamRef:
    file: str                 # repo-root-relative params file (default "params.yaml" in wdir)
    key: str | None           # dotted key ("train.lr"); None = every key of the file


@dataclass(frozen=True)
class Stage:
    name: str                 # "train", foreach: "train@0" / "train@lr-0.1", matrix: "train@a-b"
    cmd: tuple[str, ...]      # one or more shell commands, run in order with `sh -c` in wdir
    wdir: str                 # repo-root-relative ("" = the root)
    deps: tuple[str, ...]     # repo-root-relative paths (files or directories)
    params: tuple[ParamRef, ...]
    outs: tuple[Output, ...]  # outs, metrics and plots together (Output.kind tells which)
    frozen: bool = False
    always_changed: bool = False
    file: str = "cairn.yaml"  # the pipeline file that declared it (repo-root-relative)
    desc: str | None = None

    @property
    def short_name(self) -> str:
        """The name inside its file: ``train`` for ``sub/dvc.yaml:train``."""
        return self.name.rpartition(":")[2]


@dataclass(frozen=True)
class Pipeline:
    stages: Mapping[str, Stage]   # in declaration order
    files: tuple[str, ...]        # pipeline files read
    plots: tuple[Output, ...]     # top-level `plots:` definitions, if any
    metrics: tuple[Output, ...] = ()  # top-level `metrics:` files (DVC 3), if any
    params: tuple[str, ...] = ()      # top-level `params:` files (DVC 3), if any


def load_pipeline(root: Path) -> Pipeline:
    """Every pipeline file of the workspace at `root`, parsed, templated and checked.

    A repository without pipeline files has an empty pipeline.
    """
    from cairn.pipeline.parse import DiskSource

    return load_workspace_pipeline(root, DiskSource(root))


def load_workspace_pipeline(root: Path, source: Source, new_files: Sequence[str] = ()
                            ) -> Pipeline:
    """`load_pipeline` reading file contents through `source`, with `new_files` (in
    `source`, not yet on disk) too: a pipeline checked before it is written."""
    from cairn.pipeline.parse import PipelineBuilder

    builder = PipelineBuilder(source)
    for name in PIPELINE_FILES:
        if source.read(name) is not None:
            builder.add_file(name)
    skip = {o.path for s in builder.stages.values() for o in s.outs}
    nested = set(_find_nested_pipeline_files(root, skip))
    nested.update(f for f in new_files if "/" in f)
    for relpath in sorted(nested, key=_file_order):
        builder.add_file(relpath)
    return builder.build()


def _file_order(relpath: str) -> tuple[str, int]:
    """Directory by directory; in one directory, cairn.yaml before dvc.yaml."""
    directory, _, name = relpath.rpartition("/")
    return directory, PIPELINE_FILES.index(name) if name in PIPELINE_FILES else 0


def load_pipeline_at(files: Mapping[str, bytes]) -> Pipeline:
    """The same from file contents (e.g. read at a git revision): ``{relpath: bytes}``
    of pipeline files and the params/vars files they need (absent ones count as absent)."""
    from cairn.pipeline.parse import MappingSource, PipelineBuilder

    builder = PipelineBuilder(MappingSource(files))
    names = [p for p in files if p.rpartition("/")[2] in PIPELINE_FILES]
    for relpath in sorted(names, key=lambda p: (p.count("/"), p.rpartition("/")[0],
                                               PIPELINE_FILES.index(p.rpartition("/")[2]))):
        builder.add_file(relpath)
    return builder.build()


def pipeline_file_for(directory: Path) -> Path:
    """Where a new stage goes: the directory's cairn.yaml, else its dvc.yaml if that is
    the pipeline file there, else a new cairn.yaml."""
    for name in PIPELINE_FILES:
        if (directory / name).is_file():
            return directory / name
    return directory / PIPELINE_FILES[0]


def _find_nested_pipeline_files(root: Path, skip: set[str]) -> Iterator[str]:
    """Pipeline files below the root, not looking into hidden dirs, venvs, tracked
    dirs (``X.cairn`` beside ``X``) or the root pipeline's outputs."""
    def walk(directory: str, rel: str) -> Iterator[str]:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        names = {e.name for e in entries}
        subdirs = []
        for entry in entries:
            if rel and entry.name in PIPELINE_FILES and entry.is_file():
                yield f"{rel}/{entry.name}"
            elif entry.is_dir(follow_symlinks=False) and not _skipped(entry.name, names):
                subdirs.append(entry)
        for entry in subdirs:
            child = f"{rel}/{entry.name}" if rel else entry.name
            if child not in skip and not os.path.exists(os.path.join(entry.path, "pyvenv.cfg")):
                yield from walk(entry.path, child)

    yield from walk(str(root), "")


def _skipped(name: str, siblings: set[str]) -> bool:
    return (name.startswith(".") or name in _SKIP_DIRS
            or any(name + suffix in siblings for suffix in _POINTER_SUFFIXES))
