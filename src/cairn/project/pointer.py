"""Pointer files (``PATH.cairn``): what a tracked path should contain, committed to git.

Format (docs/formats.md)::

    outs:
    - path: classifier.pkl
      hash: blake3
      digest: 9f1c…
      size: 48213
      nfiles: 1        # directories only

Unknown keys are kept when Cairn rewrites the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from cairn import paths
from cairn.errors import FormatError
from cairn.fsutil import atomic_write
from cairn.objects.hashing import HASH_NAME, is_digest

SUFFIX = ".cairn"
POINTER_FORMAT = 1
# Never looked into when searching the workspace for pointer files.
SKIP_DIRS = frozenset({".git", ".cairn", "__pycache__", "node_modules"})

# The form Cairn writes, read without importing PyYAML (a good part of a command's
# start-up); anything else — quotes, comments, extra keys — goes to the YAML parser.
_CANONICAL_OUT = re.compile(
    r"- path: (?P<path>[A-Za-z0-9_][A-Za-z0-9_.\-/]*)\n"
    r"  hash: blake3\n"
    r"  digest: (?P<digest>[0-9a-f]{64})\n"
    r"  size: (?P<size>0|[1-9][0-9]*)\n"
    r"(?:  nfiles: (?P<nfiles>0|[1-9][0-9]*)\n)?")
# Plain scalars YAML would not read as strings.
_NOT_STRINGS = re.compile(r"(?i)(y|n|yes|no|true|false|on|off|null|~|[-+0-9.][0-9._:eE+\-]*"
                          r"|\.inf|\.nan)")


def _yaml() -> Any:
    import yaml

    return yaml


def _loader() -> Any:
    yaml = _yaml()
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _loads_canonical(data: bytes, path: Path) -> PointerFile | None:
    """Parse the exact form `dumps` writes; None when the file is anything else."""
    if not data.startswith(b"outs:\n"):
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    outs, pos = [], len("outs:\n")
    while pos < len(text):
        match = _CANONICAL_OUT.match(text, pos)
        out_path = match["path"] if match else ""
        if (match is None or _NOT_STRINGS.fullmatch(out_path) or paths.problem(out_path)
                or PurePosixPath(out_path).as_posix() != out_path):
            return None
        nfiles = match["nfiles"]
        outs.append(Out(out_path, match["digest"], int(match["size"]),
                        int(nfiles) if nfiles is not None else None))
        pos = match.end()
    return PointerFile(path, tuple(outs)) if outs else None


@dataclass(frozen=True)
class Out:
    path: str  # relative to the pointer file's directory, posix
    digest: str
    size: int
    nfiles: int | None = None  # set for directories only
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_dir(self) -> bool:
        return self.nfiles is not None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "hash": HASH_NAME, "digest": self.digest,
                             "size": self.size}
        if self.nfiles is not None:
            d["nfiles"] = self.nfiles
        d.update({k: v for k, v in self.extra.items() if k not in d})
        return d


@dataclass(frozen=True)
class PointerFile:
    path: Path  # of the .cairn file itself
    outs: tuple[Out, ...]
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def directory(self) -> Path:
        return self.path.parent

    def out_path(self, out: Out) -> Path:
        path = self.directory / out.path
        # a cairn.lock viewed as a pointer may name outs above its directory (`../data`)
        return Path(os.path.normpath(path)) if ".." in out.path else path

    def with_out(self, new: Out) -> PointerFile:
        """This pointer with `new` replacing the out of the same path (or appended)."""
        outs = [new if o.path == new.path else o for o in self.outs]
        if all(o.path != new.path for o in self.outs):
            outs.append(new)
        return replace(self, outs=tuple(outs))


def pointer_path_for(path: Path) -> Path:
    return path.parent / (path.name + SUFFIX)


def dumps(pointer: PointerFile) -> bytes:
    doc: dict[str, Any] = {"outs": [o.to_dict() for o in pointer.outs]}
    doc.update({k: v for k, v in pointer.extra.items() if k != "outs"})
    yaml = _yaml()
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text: str = yaml.dump(doc, Dumper=dumper, sort_keys=False, default_flow_style=False,
                          allow_unicode=True)
    return text.encode()


def write(pointer: PointerFile) -> None:
    if not pointer.path.name.endswith(SUFFIX):  # e.g. a cairn.lock viewed as a pointer
        raise ValueError(f"{pointer.path} is not a pointer file; refusing to overwrite it")
    atomic_write(pointer.path, dumps(pointer))


def loads(data: bytes, path: Path) -> PointerFile:
    fast = _loads_canonical(data, path)
    return fast if fast is not None else loads_yaml(data, path)


def loads_yaml(data: bytes, path: Path) -> PointerFile:
    """The general reader: any YAML, with errors naming the file and line."""
    where = str(path)
    yaml = _yaml()
    try:
        root = yaml.compose(data.decode("utf-8"), Loader=_loader())
    except UnicodeDecodeError:
        raise FormatError("not UTF-8 text; restore it from git", where) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise FormatError(f"{problem}; restore it from git (`git checkout -- {path.name}`)",
                          where, line) from None
    if not isinstance(root, yaml.MappingNode):
        raise FormatError("expected a mapping with an `outs` list", where, _line(root))
    doc = yaml.load(data, Loader=_loader())
    version = doc.get("format", POINTER_FORMAT)
    if version != POINTER_FORMAT:
        raise FormatError(f"pointer format {version!r} is newer than this Cairn knows "
                          f"({POINTER_FORMAT}); upgrade Cairn", where, _line(root))
    outs_node = _child(root, "outs")
    if not isinstance(outs_node, yaml.SequenceNode) or not isinstance(doc.get("outs"), list):
        raise FormatError("`outs` must be a list of outputs", where, _line(outs_node or root))
    outs = tuple(_parse_out(item, node, where) for item, node in zip(doc["outs"],
                                                                      outs_node.value, strict=True))
    return PointerFile(path, outs, {k: v for k, v in doc.items() if k != "outs"})


def _line(node: Any) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _child(node: Any, key: str) -> Any:
    for k, v in node.value:
        if getattr(k, "value", None) == key:
            return v
    return None


def _parse_out(item: Any, node: Any, where: str) -> Out:
    if not isinstance(item, dict):
        raise FormatError("each out must be a mapping with path and digest", where, _line(node))

    def bad(key: str, why: str) -> FormatError:
        return FormatError(f"out {key!r} {why}", where, _line(_child(node, key) or node))

    path = item.get("path")
    if not isinstance(path, str) or not path:
        raise bad("path", "is missing or not a string")
    found = paths.problem(path)
    if found is not None:
        raise bad("path", f"{path!r} {found}; an out names a path beside or below its "
                  "pointer file — fix or remove this entry")
    if item.get("hash", HASH_NAME) != HASH_NAME:
        raise bad("hash", f"is {item.get('hash')!r}; Cairn pointer files use {HASH_NAME}")
    digest = item.get("digest")
    if not isinstance(digest, str) or not is_digest(digest):
        raise bad("digest", f"{digest!r} is not a {HASH_NAME} digest")
    size = item.get("size")
    if not isinstance(size, int) or size < 0:
        raise bad("size", "must be a non-negative integer")
    nfiles = item.get("nfiles")
    if nfiles is not None and (not isinstance(nfiles, int) or nfiles < 0):
        raise bad("nfiles", "must be a non-negative integer")
    known = {"path", "hash", "digest", "size", "nfiles"}
    return Out(paths.normalise(path), digest, size, nfiles, {k: v for k, v in item.items()
                                                       if k not in known})


def load(path: Path) -> PointerFile:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FormatError("no such pointer file", str(path)) from None
    return loads(data, path)


def find_pointer_files(root: Path, also: str | None = None) -> Iterator[Path]:
    """Every ``*.cairn`` file in the workspace, without descending into tracked dirs;
    and every file named `also` (``cairn.lock``), in the same walk."""
    for dirpath, dirnames, filenames in os.walk(root):
        pointers = {f for f in filenames if f.endswith(SUFFIX) and len(f) > len(SUFFIX)}
        tracked = {p[: -len(SUFFIX)] for p in pointers}
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and d not in tracked
                             and not paths.is_reserved(d)
                             and not os.path.exists(os.path.join(dirpath, d, "pyvenv.cfg")))
        if also is not None and also in filenames:
            pointers.add(also)
        for name in sorted(pointers):
            yield Path(dirpath) / name
