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
from pathlib import Path
from typing import Any

from cairn import paths, yamlfile
from cairn.errors import FormatError
from cairn.fsutil import atomic_write
from cairn.objects.hashing import HASH_NAME
from cairn.project.canonical import reads_as_string
from cairn.project.tracked import InvalidField, TrackedPath

SUFFIX = ".cairn"
POINTER_FORMAT = 1
# Never looked into when searching the workspace for pointer files.
SKIP_DIRS = frozenset({".git", ".cairn", "__pycache__", "node_modules"})

# The form Cairn writes, read without PyYAML (cairn.project.canonical says why);
# anything else — quotes, comments, extra keys — goes to the YAML parser.
_CANONICAL_OUT = re.compile(
    r"- path: (?P<path>[^\n]*)\n"
    r"  hash: blake3\n"
    r"  digest: (?P<digest>[0-9a-f]{64})\n"
    r"  size: (?P<size>0|[1-9][0-9]*)\n"
    r"(?:  nfiles: (?P<nfiles>0|[1-9][0-9]*)\n)?")


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
        if match is None or not reads_as_string(match["path"]):
            return None
        nfiles = match["nfiles"]
        try:
            outs.append(TrackedPath.parse(match["path"], match["digest"], int(match["size"]),
                                          int(nfiles) if nfiles is not None else None))
        except InvalidField:
            return None  # the YAML reader names the file and line
        pos = match.end()
    return PointerFile(path, tuple(outs)) if outs else None


@dataclass(frozen=True)
class PointerFile:
    path: Path  # of the .cairn file itself
    outs: tuple[TrackedPath, ...]  # paths relative to its directory
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def directory(self) -> Path:
        return self.path.parent

    def out_path(self, out: TrackedPath) -> Path:
        path = self.directory / out.path
        # a cairn.lock viewed as a pointer may name outs above its directory (`../data`)
        return Path(os.path.normpath(path)) if ".." in out.path else path

    def with_out(self, new: TrackedPath) -> PointerFile:
        """This pointer with `new` replacing the out of the same path (or appended)."""
        outs = [new if o.path == new.path else o for o in self.outs]
        if all(o.path != new.path for o in self.outs):
            outs.append(new)
        return replace(self, outs=tuple(outs))


def pointer_path_for(path: Path) -> Path:
    return path.parent / (path.name + SUFFIX)


def dumps(pointer: PointerFile) -> bytes:
    doc: dict[str, Any] = {"outs": [_out_dict(o) for o in pointer.outs]}
    doc.update({k: v for k, v in pointer.extra.items() if k != "outs"})
    return yamlfile.dump(doc, default_flow_style=False, allow_unicode=True).encode()


def _out_dict(out: TrackedPath) -> dict[str, Any]:
    d: dict[str, Any] = {"path": out.path, "hash": HASH_NAME, "digest": out.digest,
                         "size": out.size}
    if out.nfiles is not None:
        d["nfiles"] = out.nfiles
    d.update({k: v for k, v in out.extra.items() if k not in d})
    return d


def write(pointer: PointerFile) -> None:
    if not pointer.path.name.endswith(SUFFIX):  # e.g. a cairn.lock viewed as a pointer
        raise ValueError(f"{pointer.path} is not a pointer file; refusing to overwrite it")
    atomic_write(pointer.path, dumps(pointer))


def loads(data: bytes, path: Path) -> PointerFile:
    fast = _loads_canonical(data, path)
    return fast if fast is not None else loads_yaml(data, path)


def loads_yaml(data: bytes, path: Path) -> PointerFile:
    """The general reader: any YAML, with errors naming the file and line."""
    import yaml

    where = str(path)
    try:
        root = yaml.compose(data.decode("utf-8"), Loader=yamlfile.safe_loader())
    except UnicodeDecodeError:
        raise FormatError("not UTF-8 text; restore it from git", where) from None
    except yaml.YAMLError as e:
        problem, line = yamlfile.error_position(e, "invalid YAML")
        raise FormatError(f"{problem}; restore it from git (`git checkout -- {path.name}`)",
                          where, line) from None
    if not isinstance(root, yaml.MappingNode):
        raise FormatError("expected a mapping with an `outs` list", where, _line(root))
    doc = yamlfile.safe_load(data)
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


def _parse_out(item: Any, node: Any, where: str) -> TrackedPath:
    if not isinstance(item, dict):
        raise FormatError("each out must be a mapping with path and digest", where, _line(node))

    def bad(key: str, why: str) -> FormatError:
        return FormatError(f"out {key!r} {why}", where, _line(_child(node, key) or node))

    if item.get("hash", HASH_NAME) != HASH_NAME:
        raise bad("hash", f"is {item.get('hash')!r}; Cairn pointer files use {HASH_NAME}")
    path, known = item.get("path"), {"path", "hash", "digest", "size", "nfiles"}
    try:
        return TrackedPath.parse(path, item.get("digest"), item.get("size"), item.get("nfiles"),
                                 extra={k: v for k, v in item.items() if k not in known})
    except InvalidField as e:
        named = e.key == "path" and isinstance(path, str) and path != ""
        advice = ("; an out names a path beside or below its pointer file — fix or remove "
                  "this entry") if named else ""
        raise bad(e.key, e.why + advice) from None


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
