"""`cairn.lock`: what each stage last ran with and produced (docs/formats.md).

One lock file beside each pipeline file (``cairn.yaml`` or ``dvc.yaml``; Cairn never
writes ``dvc.lock``). YAML, written by Cairn in one canonical form::

    schema: cairn-lock/1
    stages:
      train:
        cmd: python src/train.py
        deps:
        - path: data/processed
          digest: 5d41…          # blake3 of the file, or of the directory manifest
          size: 2048
          nfiles: 3              # directories only
        params:
          params.yaml:
            train.epochs: 50
        outs:
        - path: models/classifier.pkl
          digest: 9f1c…
          size: 48213
        - path: metrics.json
          digest: 77ab…
          size: 57
          cache: false           # git keeps it; push/pull/checkout leave it alone

The one module that reads and writes lock files. It lives below the pipeline because
the workspace needs it too: the cached outs a lock records are tracked data, like a
pointer file's outs, so `push`, `pull`, `checkout`, `status` and `du` cover them
(`as_pointer`).

Paths in the file are relative to the lock file's directory; here they are relative to
the repository root. Unknown keys of a stage entry and of the file are kept when Cairn
rewrites it (`extra`); a `schema` this Cairn does not know is refused.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn import yamlfile
from cairn.errors import FormatError
from cairn.fsutil import atomic_write, sync_file
from cairn.project.canonical import (
    NotCanonical,
    key_text,
    parse_pair,
    parse_scalar,
    scalar_text,
)
from cairn.project.pointer import PointerFile
from cairn.project.tracked import TrackedPath, root_relative

LOCK_NAME = "cairn.lock"
LOCK_SCHEMA = "cairn-lock/1"


@dataclass(frozen=True)
class LockedStage:
    cmd: tuple[str, ...]
    deps: tuple[TrackedPath, ...]  # paths relative to the repository root
    params: Mapping[str, Mapping[str, Any]]  # params file (root-relative) → key → value
    outs: tuple[TrackedPath, ...]
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def dep(self, path: str) -> TrackedPath | None:
        return next((d for d in self.deps if d.path == path), None)

    def out(self, path: str) -> TrackedPath | None:
        return next((o for o in self.outs if o.path == path), None)


@dataclass
class LockFile:
    path: str  # relative to the repository root
    stages: dict[str, LockedStage] = field(default_factory=dict)  # by name within its file
    extra: dict[str, Any] = field(default_factory=dict)
    # Each entry's text as last written: repro rewrites the file after every stage, and
    # re-rendering every entry each time costs O(stages²).
    _text: dict[str, tuple[LockedStage, str]] = field(default_factory=dict, repr=False,
                                                      compare=False)

    @property
    def directory(self) -> str:
        return posixpath.dirname(self.path)

    def cached_outs(self) -> list[TrackedPath]:
        """The outs the cache holds and the workspace links (not those git keeps)."""
        return [o for stage in self.stages.values() for o in stage.outs if o.cache]

    def as_pointer(self, root: Path, only: Sequence[str] | None = None) -> PointerFile:
        """The cached outs as a multi-out pointer file at the lock's place under `root`
        (out paths relative to its directory, possibly `../…`); `only`: those paths."""
        outs = tuple(TrackedPath(posixpath.relpath(o.path, self.directory or "."), o.digest,
                                 o.size, o.nfiles)
                     for o in self.cached_outs() if only is None or o.path in only)
        return PointerFile(root / self.path, outs)


def is_lock_path(rel: str) -> bool:
    return posixpath.basename(rel) == LOCK_NAME


def lock_path_for(pipeline_file: str) -> str:
    """The lock file that records the stages of `pipeline_file` (root-relative)."""
    return posixpath.join(posixpath.dirname(pipeline_file), LOCK_NAME)


# -- reading -----------------------------------------------------------------


def read_lock(root: Path, rel: str) -> LockFile:
    """The lock file at `rel`, or an empty one if there is none yet."""
    try:
        data = (root / rel).read_bytes()
    except FileNotFoundError:
        return LockFile(rel)
    return loads(data, rel)


def loads(data: bytes, rel: str) -> LockFile:
    fast = _loads_canonical(data, rel)
    return fast if fast is not None else loads_yaml(data, rel)


def loads_yaml(data: bytes, rel: str) -> LockFile:
    """The general reader: any YAML, errors with file and line."""
    doc = _load_yaml(data, rel)
    if doc is None:
        return LockFile(rel)
    if not isinstance(doc, dict):
        raise _bad(data, rel, [], "expected a mapping with `schema` and `stages`")
    schema = doc.get("schema")
    if schema != LOCK_SCHEMA:
        raise _bad(data, rel, ["schema"],
                   f"schema {schema!r} is not {LOCK_SCHEMA!r}; this Cairn cannot read it — "
                   "upgrade Cairn, or delete the file to rerun every stage")
    stages = doc.get("stages") or {}
    if not isinstance(stages, dict):
        raise _bad(data, rel, ["stages"], "`stages` must map stage names to entries")
    lock = LockFile(rel, extra={k: v for k, v in doc.items() if k not in ("schema", "stages")})
    base = posixpath.dirname(rel)
    for name, entry in stages.items():
        try:
            lock.stages[str(name)] = _parse_stage(entry, base)
        except (TypeError, ValueError) as e:
            raise _bad(data, rel, ["stages", str(name)],
                       f"stage {name!r}: {e}; delete the entry to rerun the stage") from None
    return lock


def _load_yaml(data: bytes, rel: str) -> Any:
    import yaml

    try:
        return yamlfile.safe_load(data)
    except yaml.YAMLError as e:
        problem, line = yamlfile.error_position(e)
        raise FormatError(f"invalid YAML: {problem}; restore it from git", rel, line) from None
    except UnicodeDecodeError:
        raise FormatError("not UTF-8 text; restore it from git", rel) from None


def _bad(data: bytes, rel: str, keypath: list[str], message: str) -> FormatError:
    return FormatError(message, rel, yamlfile.line_of(data, keypath, yamlfile.safe_loader()))


def _parse_stage(entry: Any, base: str) -> LockedStage:
    if not isinstance(entry, dict):
        raise TypeError("expected a mapping")
    cmd = entry.get("cmd", ())
    cmds = (cmd,) if isinstance(cmd, str) else tuple(cmd)
    if not all(isinstance(c, str) for c in cmds):
        raise TypeError("cmd must be a string or a list of strings")
    params = entry.get("params") or {}
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        raise TypeError("params must map params files to {key: value}")
    known = {"cmd", "deps", "params", "outs"}
    return LockedStage(
        cmd=cmds,
        deps=tuple(_parse_path(d, base) for d in entry.get("deps") or ()),
        params={root_relative(str(f), base): dict(v) for f, v in params.items()},
        outs=tuple(_parse_path(o, base) for o in entry.get("outs") or ()),
        extra={k: v for k, v in entry.items() if k not in known},
    )


def _parse_path(item: Any, base: str) -> TrackedPath:
    if not isinstance(item, dict):
        raise TypeError("each dep and out must be a mapping with path and digest")
    return TrackedPath.parse(item.get("path"), item.get("digest"), item.get("size", 0),
                             item.get("nfiles"), item.get("cache", True), base)


# -- the canonical form, without PyYAML ----------------------------------------------------


def _loads_canonical(data: bytes, rel: str) -> LockFile | None:
    """Parse the exact form `dumps` writes, without PyYAML (most of a clean repro's time
    otherwise); None for anything else, which the YAML reader then handles."""
    try:
        lines = data.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        return None
    if lines[:2] not in ([f"schema: {LOCK_SCHEMA}", "stages:"],
                         [f"schema: {LOCK_SCHEMA}", "stages: {}"]) or lines[-1] != "":
        return None
    lock, base = LockFile(rel), posixpath.dirname(rel)
    try:
        pos = 2
        while pos < len(lines) - 1:
            name, rest = parse_pair(lines[pos], 2)
            if rest or name in lock.stages:
                return None
            pos, lock.stages[name] = _canonical_stage(lines, pos + 1, base)
    except (NotCanonical, ValueError, IndexError):
        return None  # a bad field too (ValueError): the YAML reader names file and line
    return lock


def _canonical_stage(lines: list[str], pos: int, base: str) -> tuple[int, LockedStage]:
    key, cmd = parse_pair(lines[pos], 4)
    if key != "cmd":
        raise NotCanonical
    parts: dict[str, Any] = {"deps": (), "params": {}, "outs": ()}
    pos += 1
    while pos < len(lines) - 1 and lines[pos].startswith("    ") and lines[pos][4] != " ":
        key, rest = parse_pair(lines[pos], 4)
        if key not in parts or rest:
            raise NotCanonical
        if key == "params":
            pos, parts[key] = _canonical_params(lines, pos + 1, base)
        else:
            pos, parts[key] = _canonical_paths(lines, pos + 1, base)
    command = parse_scalar(cmd)
    if not isinstance(command, str):
        raise NotCanonical
    return pos, LockedStage((command,), parts["deps"], parts["params"], parts["outs"])


def _canonical_paths(lines: list[str], pos: int, base: str
                     ) -> tuple[int, tuple[TrackedPath, ...]]:
    found = []
    while lines[pos].startswith("    - path: "):
        path = parse_scalar(lines[pos][12:])
        digest, size = lines[pos + 1], lines[pos + 2]
        if not (digest.startswith("      digest: ") and size.startswith("      size: ")):
            raise NotCanonical
        nfiles, cache = None, True
        pos += 3
        if lines[pos].startswith("      nfiles: "):
            nfiles, pos = int(lines[pos][14:]), pos + 1
        if lines[pos] == "      cache: false":
            cache, pos = False, pos + 1
        found.append(TrackedPath.parse(path, digest[14:], int(size[12:]), nfiles, cache, base))
    return pos, tuple(found)


def _canonical_params(lines: list[str], pos: int, base: str
                      ) -> tuple[int, dict[str, dict[str, Any]]]:
    params: dict[str, dict[str, Any]] = {}
    while lines[pos].startswith("      ") and lines[pos][6] != " ":
        file, rest = parse_pair(lines[pos], 6)
        if rest not in ("", "{}"):
            raise NotCanonical
        values = params[root_relative(file, base)] = {}
        pos += 1
        while lines[pos].startswith("        ") and lines[pos][8] != " ":
            key, value = parse_pair(lines[pos], 8)
            values[key] = parse_scalar(value)
            pos += 1
    return pos, params


# -- writing ---------------------------------------------------------------------------


def dumps(lock: LockFile, order: Iterable[str] = ()) -> bytes:
    """The canonical text; stages in `order` first (the pipeline's), then the rest."""
    names = [n for n in dict.fromkeys(order) if n in lock.stages]
    names += [n for n in lock.stages if n not in names]
    head = [f"schema: {LOCK_SCHEMA}"]
    head += [f"{key_text(k)}: {scalar_text(v)}" for k, v in lock.extra.items()]
    head.append("stages:" if names else "stages: {}")
    return ("\n".join(head) + "\n" + "".join(_entry_text(lock, n) for n in names)).encode()


def _entry_text(lock: LockFile, name: str) -> str:
    """One stage entry's canonical text, remembered until the entry changes."""
    entry = lock.stages[name]
    known = lock._text.get(name)
    if known is None or known[0] is not entry:
        lines = [f"  {key_text(name)}:", *_stage_lines(entry, lock.directory)]
        known = lock._text[name] = (entry, "\n".join(lines) + "\n")
    return known[1]


def _stage_lines(stage: LockedStage, base: str) -> list[str]:
    cmd: Any = stage.cmd[0] if len(stage.cmd) == 1 else list(stage.cmd)
    lines = [f"    cmd: {scalar_text(cmd)}"]
    if stage.deps:
        lines.append("    deps:")
        lines.extend(line for d in stage.deps for line in _path_lines(d, base))
    if stage.params:
        lines.append("    params:")
        for file, values in stage.params.items():
            lines.append(f"      {key_text(_rel(base, file))}:" + ("" if values else " {}"))
            lines.extend(f"        {key_text(k)}: {scalar_text(v)}" for k, v in values.items())
    if stage.outs:
        lines.append("    outs:")
        lines.extend(line for o in stage.outs for line in _path_lines(o, base))
    lines.extend(f"    {key_text(k)}: {scalar_text(v)}" for k, v in stage.extra.items())
    return lines


def _path_lines(p: TrackedPath, base: str) -> list[str]:
    lines = [f"    - path: {scalar_text(_rel(base, p.path))}", f"      digest: {p.digest}",
             f"      size: {p.size}"]
    if p.nfiles is not None:
        lines.append(f"      nfiles: {p.nfiles}")
    if not p.cache:
        lines.append("      cache: false")
    return lines


def _rel(base: str, path: str) -> str:
    return posixpath.relpath(path, base) if base else path


def write_lock(root: Path, lock: LockFile, order: Iterable[str] = (),
               durable: bool = True) -> None:
    """Replace the lock file in one rename (readers see the old file or the new one).

    `durable=False` skips the flush to disk: repro flushes once at the end instead of
    once per stage (see docs/formats.md, "cairn.lock").
    """
    atomic_write(root / lock.path, dumps(lock, order), durable=durable)


def sync_lock(path: Path) -> None:
    """Flush a lock file written with durable=False, and its rename, to disk."""
    sync_file(path)
