"""`cairn metrics show` and `cairn metrics diff`: the metrics files of revisions.

Metrics files are those the pipeline declares (stages' `metrics:`) at each revision.
One kept in git is read from git objects; a cached one (`cache: true`, the default) from
the object cache, by the digest its `cairn.lock` or pointer file records at that
revision. JSON, YAML and TOML files are flattened to dotted keys; a CSV/TSV file gives
its header's names and its last row's values. No model is ever loaded.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cairn.errors import CairnError, FormatError
from cairn.pipeline.compare import Change, Revisions, diff, flatten
from cairn.project.snapshot import Snapshot

Metrics = dict[str, dict[str, Any]]  # metrics file → {dotted key: value}


@dataclass
class RevisionMetrics:
    label: str  # the revision as the user wrote it, "workspace", or a tag
    metrics: Metrics = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # metrics file → why it is missing


def declared_metrics(revs: Revisions, snap: Snapshot) -> list[str]:
    """The metrics files the pipeline at `snap` declares, in declaration order."""
    pipeline = revs.pipeline(snap)
    if pipeline is None:
        return []
    paths = [out.path for stage in pipeline.stages.values() for out in stage.outs
             if out.kind == "metrics"]
    paths += [out.path for out in getattr(pipeline, "metrics", ())]  # top-level, if any
    return list(dict.fromkeys(paths))


def metrics_at(revs: Revisions, snap: Snapshot) -> RevisionMetrics:
    result = RevisionMetrics(snap.label)
    paths = declared_metrics(revs, snap)
    contents = snap.read(paths)
    contents.update(read_cached(revs, snap, [p for p in paths if p not in contents],
                                result.errors))
    for path in paths:
        if path in contents:
            try:
                result.metrics[path] = parse_metrics(path, contents[path])
            except FormatError as e:  # one bad file must not hide the others
                result.errors[path] = f"{e} (as of {snap.label})"
    return result


def read_cached(revs: Revisions, snap: Snapshot, paths: list[str], errors: dict[str, str]
                ) -> dict[str, bytes]:
    """Metrics files not in git, from the cache by the digest recorded at `snap`."""
    if not paths:
        return {}
    digests = recorded_digests(snap, paths)
    found: dict[str, bytes] = {}
    odbs = revs.caches()
    for path in paths:
        digest = digests.get(path)
        if digest is None:
            errors[path] = f"{path} is neither in git nor recorded in cairn.lock at {snap.label}"
            continue
        for odb in odbs:
            try:
                found[path] = odb.read_bytes(digest)
                break
            except CairnError:
                continue
        else:
            errors[path] = (f"{path} at {snap.label} is not in the cache (object {digest[:12]}); "
                            f"run `cairn fetch --rev {snap.label}`")
    return found


def recorded_digests(snap: Snapshot, paths: Iterable[str]) -> dict[str, str]:
    """path → digest, from the cairn.lock files and pointer files at `snap`."""
    from pathlib import Path

    from cairn.project import pointer

    wanted = set(paths)
    digests: dict[str, str] = {}
    for lock in snap.locks():
        for stage in lock.stages.values():
            for locked in stage.outs:
                if locked.path in wanted and not locked.is_dir:
                    digests[locked.path] = locked.digest
    rest = [p + pointer.SUFFIX for p in wanted if p not in digests]
    for ptr_path, data in snap.read(rest).items():
        ptr = pointer.loads(data, Path(f"{snap.label}:{ptr_path}"))
        for out in ptr.outs:
            out_path = posixpath.join(posixpath.dirname(ptr_path), out.path)
            if out_path in wanted and not out.is_dir:
                digests[out_path] = out.digest
    return digests


def parse_metrics(path: str, data: bytes) -> dict[str, Any]:
    """A metrics file's values as `{dotted key: value}`, by its suffix."""
    suffix = posixpath.splitext(path)[1].lower()
    if suffix in (".csv", ".tsv"):
        return _parse_table(path, data, "\t" if suffix == ".tsv" else ",")
    from cairn.pipeline.params import read_params

    # JSON, TOML, else YAML (as DVC reads them)
    return flatten(read_params(path, data, kind="metrics"))


def _parse_table(path: str, data: bytes, delimiter: str) -> dict[str, Any]:
    import csv
    import io

    try:
        rows = [r for r in csv.reader(io.StringIO(data.decode("utf-8")), delimiter=delimiter)
                if r]
    except (UnicodeDecodeError, csv.Error) as e:
        raise FormatError(f"unreadable table ({e.__class__.__name__})", path) from None
    if len(rows) < 2:
        raise FormatError("expected a header row and at least one row of values", path)
    return {name: number(value) for name, value in zip(rows[0], rows[-1], strict=False)}


def number(text: str) -> Any:
    """A table cell as int or float when it reads as one, else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


# -- the two commands ---------------------------------------------------------------------


def metrics_show(revs: Revisions, rev_list: Iterable[str | None] = (None,),
                 all_tags: bool = False) -> list[RevisionMetrics]:
    """The metrics of each revision (None: the workspace); with `all_tags`, every tag too."""
    wanted = list(rev_list) + (revs.tags() if all_tags else [])
    snaps = [revs.snapshot(rev) for rev in dict.fromkeys(wanted)]
    return [metrics_at(revs, snap) for snap in snaps]


@dataclass
class MetricsDiff:
    old: RevisionMetrics
    new: RevisionMetrics
    changes: list[Change]


def metrics_diff(revs: Revisions, a: str | None = None, b: str | None = None,
                 all_keys: bool = False) -> MetricsDiff:
    old_snap, new_snap = revs.pair(a, b)
    old, new = metrics_at(revs, old_snap), metrics_at(revs, new_snap)
    return MetricsDiff(old, new, diff(old.metrics, new.metrics, all_keys))
