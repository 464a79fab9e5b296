"""Comparing revisions: pipelines and params as of any git revision, and `params diff`.

A revision is read straight from git objects (one `git cat-file --batch` for the whole
command, see `cairn.project.snapshot`): no checkout, no model loaded. The
workspace is a revision too, read from disk. `metrics.py` and `plots.py` build on this.
"""

from __future__ import annotations

import contextlib
import math
import posixpath
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cairn.errors import FormatError, UserError
from cairn.project.snapshot import (
    WORKSPACE,
    BlobReader,
    GitSnapshot,
    Snapshot,
    WorkspaceSnapshot,
)
from cairn.scm.git import Git

if TYPE_CHECKING:
    from pathlib import Path

    from cairn.objects.odb import ObjectDB
    from cairn.pipeline.schema import Pipeline

PIPELINE_FILES = ("cairn.yaml", "dvc.yaml")
DEFAULT_PARAMS = "params.yaml"


class _Absent:
    """A key one side of a diff lacks (distinct from a value of null)."""

    def __repr__(self) -> str:
        return "-"


ABSENT: Any = _Absent()


class EmptySnapshot(Snapshot):
    """HEAD of a repository without commits: nothing at all."""

    def __init__(self, label: str, root: Any) -> None:
        self.label, self.root = label, root

    def listing(self) -> list[str]:
        return []

    def read(self, paths: Iterable[str]) -> dict[str, bytes]:
        return {}


# -- revisions --------------------------------------------------------------------------


@dataclass
class Revisions:
    """The repository here, opened to read any of its revisions."""

    root: Path  # the Cairn project's root, or a git work tree's (DVC's files, no .cairn)
    cache_dir: Path | None
    git: Git | None
    reader: BlobReader | None
    _pipelines: dict[str, Pipeline | None] = field(default_factory=dict)

    def snapshot(self, rev: str | None) -> Snapshot:
        """`rev` as the user wrote it; None (or "workspace") is the workspace."""
        git = self.git
        if rev in (None, WORKSPACE):
            return WorkspaceSnapshot(self.root, git)
        if git is None or self.reader is None:
            raise UserError(f"revision {rev!r} needs git, and {self.root} is not in a git "
                            "repository")
        assert rev is not None
        try:
            return GitSnapshot(git, self.reader, rev, self.root)
        except UserError:
            if rev == "HEAD" and not git.has_commits():
                return EmptySnapshot("HEAD", self.root)
            raise

    def pair(self, a: str | None, b: str | None) -> tuple[Snapshot, Snapshot]:
        """DVC's defaults: no revision = HEAD vs the workspace; one = it vs the workspace."""
        return self.snapshot(a or "HEAD"), self.snapshot(b)

    def tags(self) -> list[str]:
        git = self.git
        if git is None:
            return []
        return git.run("tag", "--list", "--sort=creatordate").decode().split()

    def caches(self) -> list[ObjectDB]:
        from cairn.objects.odb import ObjectDB

        return [ObjectDB.local(self.cache_dir)] if self.cache_dir is not None else []

    def pipeline(self, snap: Snapshot) -> Pipeline | None:
        """The stages declared at `snap`; None when it has no pipeline file."""
        key = getattr(snap, "sha", snap.label)
        if key not in self._pipelines:
            self._pipelines[key] = load_pipeline_from(snap)
        return self._pipelines[key]


@contextlib.contextmanager
def open_revisions(root: Path, cache_dir: Path | None, git_root: Path | None
                   ) -> Iterator[Revisions]:
    """The revisions of the project at `root` (its cache, if it has one, for lock outs;
    its git repository, if any), read through one `git cat-file --batch`."""
    git = Git(git_root) if git_root is not None else None
    reader = BlobReader(git) if git is not None else None
    try:
        yield Revisions(root, cache_dir, git, reader)
    finally:
        if reader is not None:
            reader.close()


def load_pipeline_from(snap: Snapshot) -> Pipeline | None:
    """The pipeline files at `snap`, and the params files their `vars` and `${}` read."""
    names = [p for p in snap.listing() if posixpath.basename(p) in PIPELINE_FILES]
    if not names:
        return None
    files = snap.read(names)
    needed: set[str] = set()
    for name, data in files.items():
        base = posixpath.dirname(name)
        needed.add(posixpath.join(base, DEFAULT_PARAMS))
        needed.update(posixpath.normpath(posixpath.join(base, v)) for v in _vars_files(data))
    files.update(snap.read(sorted(needed - set(files))))
    from cairn.pipeline.schema import load_pipeline_at

    with naming_revision(snap):
        return load_pipeline_at(files)


@contextlib.contextmanager
def naming_revision(snap: Snapshot) -> Iterator[None]:
    """A malformed file of a past revision: say which revision, since the workspace's
    copy may be fine."""
    try:
        yield
    except FormatError as e:
        if isinstance(snap, WorkspaceSnapshot):
            raise
        raise FormatError(f"{e} (as of {snap.label}; fix it in a new commit, or compare "
                          "other revisions)") from None


def _vars_files(data: bytes) -> Iterator[str]:
    """Files named in `vars:` lists (top level and in stages), without their `:keys`."""
    import yaml

    from cairn import yamlfile

    try:
        doc = yamlfile.safe_load(data)
    except yaml.YAMLError:
        return  # load_pipeline_at reports it, with the line
    if not isinstance(doc, dict):
        return
    lists = [doc.get("vars")]
    stages = doc.get("stages")
    if isinstance(stages, dict):
        lists += [s.get("vars") for s in stages.values() if isinstance(s, dict)]
    for entries in lists:
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, str):
                yield entry.split(":", 1)[0]


# -- values and their differences ---------------------------------------------------------


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys: {"train": {"lr": 0.1}} → {"train.lr": 0.1}."""
    if not isinstance(value, Mapping):
        return {prefix: value} if prefix else {}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, Mapping) and item:
            flat.update(flatten(item, name))
        else:
            flat[name] = item
    return flat


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Change:
    """One key of one file at two revisions."""

    path: str
    key: str
    old: Any
    new: Any

    @property
    def delta(self) -> float | int | None:
        if is_number(self.old) and is_number(self.new):
            d = self.new - self.old
            return None if isinstance(d, float) and math.isnan(d) else d
        return None

    @property
    def changed(self) -> bool:
        return self.old is not self.new and (self.old is ABSENT or self.new is ABSENT
                                             or self.old != self.new)

    def to_dict(self, precision: int | None = None) -> dict[str, Any]:
        d = {"old": plain(self.old, precision), "new": plain(self.new, precision)}
        if self.delta is not None:
            d["diff"] = plain(self.delta, precision)
        return d


def plain(value: Any, precision: int | None = None) -> Any:
    """A value for JSON: absent is null, floats rounded to `precision` digits."""
    if value is ABSENT:
        return None
    if isinstance(value, float) and precision is not None and math.isfinite(value):
        return round(value, precision)
    return value


def diff(old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]],
         all_keys: bool = False) -> list[Change]:
    """Every key of every file on either side; unchanged ones only with `all_keys`."""
    changes = []
    for path in dict.fromkeys([*old, *new]):
        before, after = old.get(path, {}), new.get(path, {})
        for key in dict.fromkeys([*before, *after]):
            change = Change(path, key, before.get(key, ABSENT), after.get(key, ABSENT))
            if all_keys or change.changed:
                changes.append(change)
    return changes


def group(changes: Iterable[Change], precision: int | None = None
          ) -> dict[str, dict[str, dict[str, Any]]]:
    """`{path: {key: {old, new, diff}}}`, DVC's JSON shape."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for c in changes:
        out.setdefault(c.path, {})[c.key] = c.to_dict(precision)
    return out


# -- params -------------------------------------------------------------------------------


def params_at(revs: Revisions, snap: Snapshot) -> dict[str, dict[str, Any]]:
    """`{file: {dotted key: value}}`: all of params.yaml, and every param a stage names."""
    from cairn.pipeline.params import lookup, read_params

    pipeline = revs.pipeline(snap)
    wanted: dict[str, set[str] | None] = {DEFAULT_PARAMS: None}
    for stage in pipeline.stages.values() if pipeline is not None else ():
        for ref in stage.params:
            keys = wanted.setdefault(ref.file, set())
            if ref.key is None or keys is None:
                wanted[ref.file] = None
            else:
                keys.add(ref.key)
    found: dict[str, dict[str, Any]] = {}
    for path, data in snap.read(wanted).items():
        with naming_revision(snap):
            params = read_params(path, data)
        keys = wanted[path]
        if keys is None:
            found[path] = flatten(params)
            continue
        values: dict[str, Any] = {}
        for key in sorted(keys):
            with contextlib.suppress(KeyError):  # a key of another revision
                values.update(flatten(lookup(params, key), key))
        found[path] = values
    return found


def params_diff(revs: Revisions, a: str | None = None, b: str | None = None,
                all_keys: bool = False) -> tuple[Snapshot, Snapshot, list[Change]]:
    old, new = revs.pair(a, b)
    return old, new, diff(params_at(revs, old), params_at(revs, new), all_keys)
