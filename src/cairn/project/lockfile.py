"""Reading `cairn.lock` (docs/formats.md, "cairn.lock"): what each stage last produced.

The one parser of lock files. It lives below the pipeline because the workspace needs
it too: the cached outs a lock records are tracked data, like a pointer file's outs, so
`push`, `pull`, `checkout`, `status` and `du` cover them (`as_pointer`). Writing the
canonical form stays with the pipeline (`cairn.pipeline.lock`), which builds on this.

Paths in the file are relative to the lock file's directory; here they are relative to
the repository root. Unknown keys of a stage entry and of the file are kept (`extra`);
a `schema` this Cairn does not know is refused.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn import paths
from cairn.errors import FormatError
from cairn.objects.hashing import is_digest
from cairn.project.pointer import Out, PointerFile

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
    cache: bool = True  # outs only: False for those git keeps (metrics.json)

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
    # The writer's memo of each entry's text (cairn.pipeline.lock): repro rewrites the
    # file after every stage, and re-rendering every entry each time costs O(stages²).
    _text: dict[str, tuple[LockedStage, str]] = field(default_factory=dict, repr=False,
                                                      compare=False)

    @property
    def directory(self) -> str:
        return posixpath.dirname(self.path)

    def cached_outs(self) -> list[LockedPath]:
        """The outs the cache holds and the workspace links (not those git keeps)."""
        return [o for stage in self.stages.values() for o in stage.outs if o.cache]

    def as_pointer(self, root: Path, only: Sequence[str] | None = None) -> PointerFile:
        """The cached outs as a multi-out pointer file at the lock's place under `root`
        (out paths relative to its directory, possibly `../…`); `only`: those paths."""
        outs = tuple(Out(posixpath.relpath(o.path, self.directory or "."), o.digest, o.size,
                         o.nfiles)
                     for o in self.cached_outs() if only is None or o.path in only)
        return PointerFile(root / self.path, outs)


def is_lock_path(rel: str) -> bool:
    return posixpath.basename(rel) == LOCK_NAME


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
        except (TypeError, ValueError, KeyError) as e:
            raise _bad(data, rel, ["stages", str(name)],
                       f"stage {name!r}: {e}; delete the entry to rerun the stage") from None
    return lock


def _yaml() -> Any:
    import yaml

    return yaml


def _load_yaml(data: bytes, rel: str) -> Any:
    yaml = _yaml()
    try:
        return yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or "not valid YAML"
        raise FormatError(f"invalid YAML: {problem}; restore it from git", rel,
                          mark.line + 1 if mark is not None else None) from None
    except UnicodeDecodeError:
        raise FormatError("not UTF-8 text; restore it from git", rel) from None


def _line_of(data: bytes, keypath: Sequence[str]) -> int | None:
    """The 1-based line of the key at `keypath` (or of the deepest part that exists)."""
    yaml = _yaml()
    try:
        node = yaml.compose(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (yaml.YAMLError, UnicodeDecodeError):
        return None
    line = None if node is None else node.start_mark.line + 1
    for step in keypath:
        found = next(((k, v) for k, v in getattr(node, "value", ()) if isinstance(
            node, yaml.MappingNode) and getattr(k, "value", None) == step), None)
        if found is None:
            return line
        line, node = found[0].start_mark.line + 1, found[1]
    return line


def _bad(data: bytes, rel: str, keypath: list[str], message: str) -> FormatError:
    return FormatError(message, rel, _line_of(data, keypath))


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
        params={_inside(base, str(f)): dict(v) for f, v in params.items()},
        outs=tuple(_parse_path(o, base) for o in entry.get("outs") or ()),
        extra={k: v for k, v in entry.items() if k not in known},
    )


def _parse_path(item: Any, base: str) -> LockedPath:
    if not isinstance(item, dict):
        raise TypeError("each dep and out must be a mapping with path and digest")
    path, digest, size = item["path"], item["digest"], item.get("size", 0)
    nfiles, cache = item.get("nfiles"), item.get("cache", True)
    if not isinstance(path, str) or not is_digest(digest):
        raise ValueError(f"bad path or digest in {item!r}")
    if not isinstance(size, int) or (nfiles is not None and not isinstance(nfiles, int)):
        raise ValueError(f"size and nfiles must be integers in {item!r}")
    if not isinstance(cache, bool):
        raise ValueError(f"cache must be true or false in {item!r}")
    return LockedPath(_inside(base, path), digest, size, nfiles, cache)


def _inside(base: str, path: str) -> str:
    """`path` (relative to the lock's directory `base`) relative to the root, checked."""
    if path.startswith("/"):
        raise ValueError(f"path {path!r} is absolute; paths in a lock are relative to it")
    joined = _join(base, path)
    found = paths.problem(joined)
    if found is not None:
        raise ValueError(f"path {path!r} {found}")
    return joined


def _join(base: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(base, path)) if base else posixpath.normpath(path)


# -- the canonical form, without PyYAML ----------------------------------------------------


class _NotCanonical(Exception):
    pass


def _loads_canonical(data: bytes, rel: str) -> LockFile | None:
    """Parse the exact form Cairn writes, without PyYAML (most of a clean repro's time
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
        nfiles, cache = None, True
        pos += 3
        if lines[pos].startswith("      nfiles: "):
            nfiles, pos = int(lines[pos][14:]), pos + 1
        if lines[pos] == "      cache: false":
            cache, pos = False, pos + 1
        oid = digest[14:]
        if not is_digest(oid):
            raise _NotCanonical
        if paths.problem(_join(base, path)) is not None or path.startswith("/"):
            raise _NotCanonical  # the YAML reader names the file, stage and line
        found.append(LockedPath(_join(base, path), oid, int(size[12:]), nfiles, cache))
    return pos, tuple(found)


def _canonical_params(lines: list[str], pos: int, base: str
                      ) -> tuple[int, dict[str, dict[str, Any]]]:
    params: dict[str, dict[str, Any]] = {}
    while lines[pos].startswith("      ") and lines[pos][6] != " ":
        file, rest = _pair(lines[pos], 6)
        if rest not in ("", "{}"):
            raise _NotCanonical
        if file.startswith("/") or paths.problem(_join(base, file)) is not None:
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
    """A value as the writer puts it; _NotCanonical for the forms left to PyYAML."""
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
