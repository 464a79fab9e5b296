"""The one YAML setup: which loader and dumper, and how a YAML error names its line.

Two dialects. Cairn's own files (pointer files, `cairn.lock`, cairn-model.yaml, logged
dicts) are YAML 1.1 through PyYAML's safe loader and dumper, in C when there is one.
Pipeline and params files are read as DVC reads them (`pipeline_loader`: YAML 1.2,
duplicate keys refused; `load` keeps their parsed form, `repro` reads them often) and
stages are written into them as DVC writes them (`pipeline_dumper`).
PyYAML itself is imported inside each function: `import cairn` must not load it.
"""

from __future__ import annotations

import contextlib
import functools
import marshal
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cairn.errors import FormatError


def safe_loader() -> Any:
    """PyYAML's safe loader, the C one when PyYAML was built with libyaml."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_dumper() -> Any:
    import yaml

    return getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def safe_load(data: bytes | str) -> Any:
    """`data` parsed as YAML 1.1; yaml.YAMLError or UnicodeDecodeError if it is not."""
    import yaml

    return yaml.load(data, Loader=safe_loader())


def safe_load_plain(data: bytes | str) -> Any:
    """`data` parsed as `safe_load` does, refusing anchors and aliases (FormatError):
    for documents Cairn writes itself and reads from untrusted files, where an alias
    could only be a "billion laughs" that expands when the document is walked."""
    import yaml

    for event in yaml.parse(data, Loader=safe_loader()):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise FormatError("YAML anchors and aliases are not allowed here")
    return safe_load(data)


def dump(doc: Any, dumper: Any = None, **options: Any) -> str:
    """`doc` as YAML text with `dumper` (the safe one unless told), keys in their order."""
    import yaml

    text: str = yaml.dump(doc, Dumper=dumper or safe_dumper(),
                          **{"sort_keys": False, **options})
    return text


def error_position(e: Exception, default: str = "not valid YAML") -> tuple[str, int | None]:
    """A yaml.YAMLError's problem and 1-based line (None when it has no position)."""
    mark = getattr(e, "problem_mark", None)
    return (getattr(e, "problem", None) or default,
            mark.line + 1 if mark is not None else None)


@functools.cache
def pipeline_loader() -> Any:
    """A safe loader that refuses a mapping with one key twice (PyYAML keeps the last;
    DVC's ruamel refuses, so a duplicated stage name must not pass silently)."""
    import yaml

    class Loader(safe_loader()):  # type: ignore[misc]
        pass

    def construct_map(self: Any, node: Any) -> Any:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise DuplicateKey(key_node.value, key_node.start_mark.line + 1)
                seen.add(key_node.value)
        return (yield from self.construct_yaml_map(node))

    Loader.add_constructor("tag:yaml.org,2002:map", construct_map)
    _use_yaml_1_2(Loader)
    return Loader


@functools.cache
def pipeline_dumper() -> Any:
    """The safe dumper writing null as nothing: ``- all.toml:`` rather than
    ``- all.toml: null``, as DVC writes a params file without keys."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(type(None), lambda d, _: d.represent_scalar(
        "tag:yaml.org,2002:null", ""))
    return Dumper


# YAML 1.2 core schema, as DVC's ruamel reads dvc.yaml and params files: `lr: 1e-3` is
# 0.001, `on`/`yes` are strings, 010 is ten, 0o10 is eight, 1:20 is a string (YAML 1.1,
# PyYAML's rules, says a string, true, eight, a string and eighty).
_CORE_1_2 = {
    "tag:yaml.org,2002:bool": (r"(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    "tag:yaml.org,2002:int": (r"[-+]?(?:[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+)$",
                              "-+0123456789"),
    "tag:yaml.org,2002:float": (r"[-+]?(?:(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?"
                                r"|[0-9][0-9_]*[eE][-+]?[0-9]+|\.(?:inf|Inf|INF))$"
                                r"|\.(?:nan|NaN|NAN)$", "-+0123456789."),
}


def _use_yaml_1_2(loader_class: Any) -> None:
    loader_class.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in rules if tag not in _CORE_1_2]
        for first, rules in loader_class.yaml_implicit_resolvers.items()}
    for tag, (regexp, first) in _CORE_1_2.items():
        loader_class.add_implicit_resolver(tag, re.compile(regexp), list(first))

    def construct_int(self: Any, node: Any) -> int:
        text = str(self.construct_scalar(node)).replace("_", "")
        prefixed = text.lstrip("+-")[:2].lower() in ("0o", "0x", "0b")
        return int(text, 0) if prefixed else int(text)  # 010 is ten, not octal

    loader_class.add_constructor("tag:yaml.org,2002:int", construct_int)


class DuplicateKey(Exception):
    def __init__(self, key: str, line: int) -> None:
        super().__init__(key)
        self.key, self.line = key, line


def load(data: bytes | str, path: str, cache_dir: Path | None = None) -> Any:
    """Parse `data` (the contents of `path`, a pipeline or params file) with
    `pipeline_loader`, or a FormatError naming path and line.

    Parsed documents are kept by content digest, in this process and, given
    `cache_dir`, on disk: the YAML constructor runs in Python and costs milliseconds per
    hundred lines, where reading the kept copy costs microseconds (`repro` with nothing
    to do must be fast). A copy is returned each time, so callers may change it.
    """
    import blake3  # Cairn's hash, loaded anyway by anything that hashes files

    raw = data.encode() if isinstance(data, str) else data
    digest: bytes = blake3.blake3(_CACHE_FORMAT + raw).digest()[:16]
    kept = _memo.get((path, digest))
    if kept is None and cache_dir is not None:
        kept = _read_kept(cache_dir, path, digest)
    if kept is not None:
        with contextlib.suppress(ValueError, EOFError, TypeError):
            return marshal.loads(kept)
    doc = _parse(data, path)
    try:
        kept = marshal.dumps(doc)
    except ValueError:  # a type marshal cannot keep (a YAML timestamp): parse every time
        return doc
    if len(_memo) > 256:
        _memo.clear()
    _memo[(path, digest)] = kept
    if cache_dir is not None:
        _write_kept(cache_dir, path, digest, kept)
    return doc


_CACHE_FORMAT = b"cairn-yaml/3"  # change it when parsing changes what a document holds
_memo: dict[tuple[str, bytes], bytes] = {}


def _kept_path(cache_dir: Path, path: str) -> Path:
    import blake3

    return cache_dir / str(blake3.blake3(path.encode()).hexdigest())[:32]


def _read_kept(cache_dir: Path, path: str, digest: bytes) -> bytes | None:
    try:
        kept = _kept_path(cache_dir, path).read_bytes()
    except OSError:
        return None
    return kept[len(digest):] if kept.startswith(digest) else None


def _write_kept(cache_dir: Path, path: str, digest: bytes, kept: bytes) -> None:
    """Best effort, no fsync: a lost or torn entry is only a cache miss (the digest
    prefix, written first, is checked; marshal refuses a truncated body)."""
    from cairn.fsutil import atomic_write

    with contextlib.suppress(OSError):
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(_kept_path(cache_dir, path), digest + kept, durable=False)


def _parse(data: bytes | str, path: str) -> Any:
    import yaml

    try:
        return yaml.load(data, Loader=pipeline_loader())
    except DuplicateKey as e:
        raise FormatError(f"{e.key!r} is defined twice in one mapping (a stage, key or option "
                          "name must be unique there); keep one", path, e.line) from None
    except yaml.YAMLError as e:
        problem, line = error_position(e)
        context = getattr(e, "context", None)
        detail = f"{context}, {problem}" if context else problem
        raise FormatError(f"invalid YAML: {detail}", path, line) from None
    except UnicodeDecodeError:
        raise FormatError("not UTF-8 text", path) from None


def line_of(data: bytes | str, keypath: Sequence[str | int], loader: Any = None
            ) -> int | None:
    """The 1-based line of the value at `keypath` (mapping keys and list indexes); for a
    path that leads nowhere, the line of the deepest part that exists. `loader`:
    `pipeline_loader` unless told."""
    import yaml

    try:
        node = yaml.compose(data, Loader=loader or pipeline_loader())
    except (yaml.YAMLError, UnicodeDecodeError):
        return None
    line = None if node is None else node.start_mark.line + 1
    for step in keypath:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value
                          if isinstance(k, yaml.ScalarNode) and k.value == str(step)), None)
            if found is None:
                return line
            # a key's own line: where an unknown or mistyped key is written
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) \
                and 0 <= step < len(node.value):
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            return line
    return line
