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

Paths are relative to the lock file's directory. Unknown keys of a stage entry and of
the file are kept when Cairn rewrites it; a `schema` it does not know is refused.
"""

from __future__ import annotations

import contextlib
import math
import os
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn.errors import FormatError
from cairn.objects.hashing import is_digest

LOCK_NAME = "cairn.lock"
LOCK_SCHEMA = "cairn-lock/1"

# Strings written without quotes: they read back as the same string (not a number,
# bool, null, date, alias or tag) — everything else is double-quoted.
_PLAIN = re.compile(r"(?:[A-Za-z_/]|\.\.?/)[A-Za-z0-9_./@+=\-]*(?:[ ,][A-Za-z0-9_./@+=\-]+)*")
_PLAIN_BUT_NOT_STR = re.compile(r"(?i)(y|n|yes|no|true|false|on|off|null)")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_FLOAT_EXP = re.compile(r"-?[0-9]+\.[0-9]+e[-+][0-9]+")  # how PyYAML writes 1e-05


@dataclass(frozen=True)
class LockedPath:
    """A dep or out as it was: `path` relative to the repository root."""

    path: str
    digest: str
    size: int
    nfiles: int | None = None  # directories only

    @property
    def is_dir(self) -> bool:
        return self.nfiles is not None


@dataclass(frozen=True)
class LockedStage:
    cmd: tuple[str, ...]
    deps: tuple[LockedPath, ...]
    params: Mapping[str, Mapping[str, Any]]  # params file (root-relative) → key → value
    outs: tuple[LockedPath, ...]
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def dep(self, path: str) -> LockedPath | None:
        return next((d for d in self.deps if d.path == path), None)

    def out(self, path: str) -> LockedPath | None:
        return next((o for o in self.outs if o.path == path), None)


@dataclass
class LockFile:
    path: str  # relative to the repository root
    stages: dict[str, LockedStage] = field(default_factory=dict)  # by name within its file
    extra: dict[str, Any] = field(default_factory=dict)
    # Each entry's text as last written: repro rewrites the file after every stage, and
    # re-rendering every entry each time would cost O(stages²).
    _text: dict[str, tuple[LockedStage, str]] = field(default_factory=dict, repr=False,
                                                      compare=False)

    def entry_text(self, name: str) -> str:
        entry = self.stages[name]
        known = self._text.get(name)
        if known is None or known[0] is not entry:
            lines = [f"  {_key(name)}:", *_stage_lines(entry, self.directory)]
            known = self._text[name] = (entry, "\n".join(lines) + "\n")
        return known[1]

    @property
    def directory(self) -> str:
        return posixpath.dirname(self.path)


def lock_path_for(pipeline_file: str) -> str:
    """The lock file that records the stages of `pipeline_file` (root-relative)."""
    return posixpath.join(posixpath.dirname(pipeline_file), LOCK_NAME)


# -- reading ---------------------------------------------------------------------------


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
    from cairn.pipeline import yamlfile

    doc = yamlfile.load(data, rel)
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
        except (TypeError, ValueError, KeyError) as e:
            raise _bad(data, rel, ["stages", str(name)],
                       f"stage {name!r}: {e}; delete the entry to rerun the stage") from None
    return lock


def _bad(data: bytes, rel: str, keypath: list[str | int], message: str) -> FormatError:
    from cairn.pipeline import yamlfile

    return FormatError(message, rel, yamlfile.line_of(data, keypath))


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
        params={_join(base, str(f)): dict(v) for f, v in params.items()},
        outs=tuple(_parse_path(o, base) for o in entry.get("outs") or ()),
        extra={k: v for k, v in entry.items() if k not in known},
    )


def _parse_path(item: Any, base: str) -> LockedPath:
    if not isinstance(item, dict):
        raise TypeError("each dep and out must be a mapping with path and digest")
    path, digest, size = item["path"], item["digest"], item.get("size", 0)
    nfiles = item.get("nfiles")
    if not isinstance(path, str) or not is_digest(digest):
        raise ValueError(f"bad path or digest in {item!r}")
    if not isinstance(size, int) or (nfiles is not None and not isinstance(nfiles, int)):
        raise ValueError(f"size and nfiles must be integers in {item!r}")
    return LockedPath(_join(base, path), digest, size, nfiles)


def _join(base: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(base, path)) if base else posixpath.normpath(path)


class _NotCanonical(Exception):
    pass


def _loads_canonical(data: bytes, rel: str) -> LockFile | None:
    """Parse the exact form `dumps` writes, without PyYAML (most of a clean repro's
    time otherwise); None for anything else, which the YAML reader then handles."""
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
            name, rest = _pair(lines[pos], 2)
            if rest or name in lock.stages:
                return None
            pos, lock.stages[name] = _canonical_stage(lines, pos + 1, base)
    except (_NotCanonical, ValueError, IndexError):
        return None
    return lock


def _canonical_stage(lines: list[str], pos: int, base: str) -> tuple[int, LockedStage]:
    key, cmd = _pair(lines[pos], 4)
    if key != "cmd":
        raise _NotCanonical
    parts: dict[str, Any] = {"deps": (), "params": {}, "outs": ()}
    pos += 1
    while pos < len(lines) - 1 and lines[pos].startswith("    ") and lines[pos][4] != " ":
        key, rest = _pair(lines[pos], 4)
        if key not in parts or rest:
            raise _NotCanonical
        if key == "params":
            pos, parts[key] = _canonical_params(lines, pos + 1, base)
        else:
            pos, parts[key] = _canonical_paths(lines, pos + 1, base)
    command = _scalar(cmd)
    if not isinstance(command, str):
        raise _NotCanonical
    return pos, LockedStage((command,), parts["deps"], parts["params"], parts["outs"])


def _canonical_paths(lines: list[str], pos: int, base: str
                     ) -> tuple[int, tuple[LockedPath, ...]]:
    found = []
    while lines[pos].startswith("    - path: "):
        path = _scalar(lines[pos][12:])
        digest, size = lines[pos + 1], lines[pos + 2]
        if not (isinstance(path, str) and digest.startswith("      digest: ")
                and size.startswith("      size: ")):
            raise _NotCanonical
        nfiles = None
        pos += 3
        if lines[pos].startswith("      nfiles: "):
            nfiles, pos = int(lines[pos][14:]), pos + 1
        oid = digest[14:]
        if not is_digest(oid):
            raise _NotCanonical
        found.append(LockedPath(_join(base, path), oid, int(size[12:]), nfiles))
    return pos, tuple(found)


def _canonical_params(lines: list[str], pos: int, base: str
                      ) -> tuple[int, dict[str, dict[str, Any]]]:
    params: dict[str, dict[str, Any]] = {}
    while lines[pos].startswith("      ") and lines[pos][6] != " ":
        file, rest = _pair(lines[pos], 6)
        if rest not in ("", "{}"):
            raise _NotCanonical
        values = params[_join(base, file)] = {}
        pos += 1
        while lines[pos].startswith("        ") and lines[pos][8] != " ":
            key, value = _pair(lines[pos], 8)
            values[key] = _scalar(value)
            pos += 1
    return pos, params


def _pair(line: str, indent: int) -> tuple[str, str]:
    """``key: value`` at exactly `indent` spaces (value may be empty)."""
    if line[:indent] != " " * indent or line[indent:indent + 1] in (" ", ""):
        raise _NotCanonical
    text = line[indent:]
    if text.startswith('"'):
        import json

        key, end = json.JSONDecoder().raw_decode(text)
        rest = text[end:]
    else:
        key, sep, rest = text.partition(":")
        rest = sep + rest
        if not _PLAIN.fullmatch(key) or _PLAIN_BUT_NOT_STR.fullmatch(key):
            raise _NotCanonical
    if rest == ":":
        return key, ""
    if not rest.startswith(": "):
        raise _NotCanonical
    return key, rest[2:]


def _scalar(text: str) -> Any:
    """A value as `_value` writes it; _NotCanonical for the forms left to PyYAML."""
    if text.startswith('"'):
        import json

        return json.loads(text)
    if text in _LITERALS:
        return _LITERALS[text]
    if _NUMBER.fullmatch(text) or _FLOAT_EXP.fullmatch(text):
        return float(text) if "." in text else int(text)
    if _PLAIN.fullmatch(text) and not _PLAIN_BUT_NOT_STR.fullmatch(text):
        return text
    raise _NotCanonical


_LITERALS: dict[str, Any] = {"null": None, "true": True, "false": False}


# -- writing ---------------------------------------------------------------------------


def dumps(lock: LockFile, order: Iterable[str] = ()) -> bytes:
    """The canonical text; stages in `order` first (the pipeline's), then the rest."""
    names = [n for n in dict.fromkeys(order) if n in lock.stages]
    names += [n for n in lock.stages if n not in names]
    head = [f"schema: {LOCK_SCHEMA}"]
    head += [f"{_key(k)}: {_value(v)}" for k, v in lock.extra.items()]
    head.append("stages:" if names else "stages: {}")
    return ("\n".join(head) + "\n" + "".join(lock.entry_text(n) for n in names)).encode()


def _stage_lines(stage: LockedStage, base: str) -> list[str]:
    cmd: Any = stage.cmd[0] if len(stage.cmd) == 1 else list(stage.cmd)
    lines = [f"    cmd: {_value(cmd)}"]
    if stage.deps:
        lines.append("    deps:")
        lines.extend(line for d in stage.deps for line in _path_lines(d, base))
    if stage.params:
        lines.append("    params:")
        for file, values in stage.params.items():
            lines.append(f"      {_key(_rel(base, file))}:" + ("" if values else " {}"))
            lines.extend(f"        {_key(k)}: {_value(v)}" for k, v in values.items())
    if stage.outs:
        lines.append("    outs:")
        lines.extend(line for o in stage.outs for line in _path_lines(o, base))
    lines.extend(f"    {_key(k)}: {_value(v)}" for k, v in stage.extra.items())
    return lines


def _path_lines(p: LockedPath, base: str) -> list[str]:
    lines = [f"    - path: {_value(_rel(base, p.path))}", f"      digest: {p.digest}",
             f"      size: {p.size}"]
    if p.nfiles is not None:
        lines.append(f"      nfiles: {p.nfiles}")
    return lines


def _rel(base: str, path: str) -> str:
    return posixpath.relpath(path, base) if base else path


def _key(key: Any) -> str:
    return _value(key) if isinstance(key, str) else _value(str(key))


def _value(value: Any) -> str:
    """One YAML value on one line, read back as exactly `value`."""
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and not _PLAIN_BUT_NOT_STR.fullmatch(value):
            return value
        import json

        text = json.dumps(value, ensure_ascii=False)  # also valid YAML, escapes and all
        if text.isprintable():
            return text
        # What JSON leaves raw but YAML refuses to read (DEL, C1 controls, U+2028…).
        return "".join(c if c.isprintable() else
                       f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}"
                       for c in text)
    elif value is None:
        return "null"
    elif isinstance(value, bool):
        return "true" if value else "false"
    elif isinstance(value, int):
        return str(value)
    elif isinstance(value, float) and math.isfinite(value) and _NUMBER.fullmatch(repr(value)):
        return repr(value)
    return _yaml_flow(value)


def _yaml_flow(value: Any) -> str:
    """Anything else (lists, mappings, 1e-05, odd strings): PyYAML, in flow style."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text: str = yaml.dump(value, Dumper=dumper, default_flow_style=True, width=1 << 30,
                          allow_unicode=True, sort_keys=False)
    return text.removesuffix("\n...\n").strip()


def write_lock(root: Path, lock: LockFile, order: Iterable[str] = (),
               durable: bool = True) -> None:
    """Replace the lock file in one rename (readers see the old file or the new one).

    `durable=False` skips the flush to disk: repro flushes once at the end instead of
    once per stage (see docs/formats.md, "cairn.lock").
    """
    path = root / lock.path
    data = dumps(lock, order)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        sync_lock(path)


def sync_lock(path: Path) -> None:
    """Flush a lock file written with durable=False, and its rename, to disk."""
    from cairn.fsutil import fsync_dir

    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)
