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

Paths are relative to the lock file's directory. Unknown keys of a stage entry and of
the file are kept when Cairn rewrites it; a `schema` it does not know is refused.
Reading is `cairn.project.lockfile` (the workspace reads locks too); this module
writes the canonical form.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Reading lives in the workspace layer (one parser: `cairn push/pull/status` read locks
# too); re-exported here so the pipeline speaks of one module.
from cairn.fsutil import atomic_write, sync_file
from cairn.project.lockfile import (  # noqa: F401 - re-exports
    _NUMBER,
    _PLAIN,
    _PLAIN_BUT_NOT_STR,
    LOCK_NAME,
    LOCK_SCHEMA,
    LockedPath,
    LockedStage,
    LockFile,
    _loads_canonical,
    loads,
    loads_yaml,
    read_lock,
)

__all__ = ["LOCK_NAME", "LOCK_SCHEMA", "LockFile", "LockedPath", "LockedStage", "dumps",
           "loads", "loads_yaml", "lock_path_for", "read_lock", "sync_lock", "write_lock"]


def lock_path_for(pipeline_file: str) -> str:
    """The lock file that records the stages of `pipeline_file` (root-relative)."""
    return posixpath.join(posixpath.dirname(pipeline_file), LOCK_NAME)


def entry_text(lock: LockFile, name: str) -> str:
    """One stage entry's canonical text, remembered until the entry changes."""
    entry = lock.stages[name]
    known = lock._text.get(name)
    if known is None or known[0] is not entry:
        lines = [f"  {_key(name)}:", *_stage_lines(entry, lock.directory)]
        known = lock._text[name] = (entry, "\n".join(lines) + "\n")
    return known[1]


# -- writing ---------------------------------------------------------------------------


def dumps(lock: LockFile, order: Iterable[str] = ()) -> bytes:
    """The canonical text; stages in `order` first (the pipeline's), then the rest."""
    names = [n for n in dict.fromkeys(order) if n in lock.stages]
    names += [n for n in lock.stages if n not in names]
    head = [f"schema: {LOCK_SCHEMA}"]
    head += [f"{_key(k)}: {_value(v)}" for k, v in lock.extra.items()]
    head.append("stages:" if names else "stages: {}")
    return ("\n".join(head) + "\n" + "".join(entry_text(lock, n) for n in names)).encode()


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
    if not p.cache:
        lines.append("      cache: false")
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
    atomic_write(root / lock.path, dumps(lock, order), durable=durable)


def sync_lock(path: Path) -> None:
    """Flush a lock file written with durable=False, and its rename, to disk."""
    sync_file(path)
