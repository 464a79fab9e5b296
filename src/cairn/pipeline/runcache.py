"""The run cache: a stage whose exact inputs ran before gets its outputs back, not rerun.

An entry records one successful run: the inputs (cmd, wdir, dep digests, param values,
out paths and flags) and the digests of the outs it produced. It lives at
``<cache>/runs/<key[:2]>/<key[2:]>``, where the key is the BLAKE3 of the canonical JSON
of the inputs alone — so a stage about to run computes its key and finds the entry in
one lookup. The entry holds its inputs too, so a reader recomputes the key and ignores
an entry that does not match its name (a torn write, a bad copy from a remote). The
out bytes are ordinary cache objects; remotes keep entries under ``<remote>/runs/``
beside ``objects/`` (docs/formats.md, "run cache").
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.fsutil import atomic_write
from cairn.objects.hashing import hash_bytes, is_digest
from cairn.pipeline.schema import Stage
from cairn.project.tracked import TrackedPath

RUN_FORMAT = 1
RUNS_DIR = "runs"


@dataclass(frozen=True)
class RunEntry:
    inputs: dict[str, Any]  # cmd, wdir, deps [[path, digest]], params, outs [[path, cache]]
    outs: tuple[TrackedPath, ...]

    @property
    def key(self) -> str:
        return run_key(self.inputs)

    def to_bytes(self) -> bytes:
        doc = {"format": RUN_FORMAT, "inputs": self.inputs,
               "outs": [_path_doc(o) for o in self.outs]}
        return _canonical(doc)


def cacheable(stage: Stage) -> bool:
    """Only a stage with a command, deps (files or params: DVC counts both) and outs, none
    persistent, is cached (DVC's rule: a persistent out depends on its own past, an
    always_changed stage on the world)."""
    return bool(stage.cmd and (stage.deps or stage.params) and stage.outs
                and not stage.always_changed and not any(o.persist for o in stage.outs))


def stage_inputs(stage: Stage, deps: tuple[TrackedPath, ...],
                 params: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "cmd": list(stage.cmd),
        "wdir": stage.wdir,
        "deps": [[d.path, d.digest] for d in deps],
        "params": params,
        "outs": [[o.path, o.cache] for o in stage.outs],
    }


def run_key(inputs: dict[str, Any]) -> str:
    return hash_bytes(_canonical(inputs))


def _canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode()


def _path_doc(p: TrackedPath) -> dict[str, Any]:
    doc: dict[str, Any] = {"path": p.path, "digest": p.digest, "size": p.size}
    if p.nfiles is not None:
        doc["nfiles"] = p.nfiles
    return doc


def entry_path(cache_root: Path, key: str) -> Path:
    return cache_root / RUNS_DIR / key[:2] / key[2:]


def decode(data: bytes, key: str) -> RunEntry | None:
    """The entry stored under `key`, or None if the bytes are not a valid entry for it."""
    try:
        doc = json.loads(data)
        if doc.get("format") != RUN_FORMAT:
            return None
        # InvalidField (a ValueError) for paths that leave the workspace, bad digests…
        outs = tuple(TrackedPath.parse(o["path"], o["digest"], o["size"], o.get("nfiles"))
                     for o in doc["outs"])
        entry = RunEntry(doc["inputs"], outs)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return entry if entry.key == key else None  # a torn write or a bad copy


def lookup(cache_root: Path, key: str) -> RunEntry | None:
    try:
        data = entry_path(cache_root, key).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return decode(data, key)


def save(cache_root: Path, entry: RunEntry) -> None:
    """Write the entry, replacing an older run of the same inputs. Not flushed here: an
    entry is only a shortcut, checked when read, and repro flushes once at its end."""
    path, data = entry_path(cache_root, entry.key), entry.to_bytes()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # New key (the usual case): create it under its name; a torn write is caught
        # by the key check on reading and replaced by the next run.
        with open(path, "xb") as f:
            f.write(data)
    except FileExistsError:
        if path.read_bytes() != data:
            store(path, data)


def store(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data, durable=False)  # repro flushes the whole cache once at the end


def keys(cache_root: Path) -> Iterator[str]:
    """The key of every entry in the cache."""
    runs = cache_root / RUNS_DIR
    try:
        prefixes = [e for e in os.scandir(runs) if len(e.name) == 2 and e.is_dir()]
    except FileNotFoundError:
        return
    for prefix in prefixes:
        with os.scandir(prefix.path) as entries:
            for entry in entries:
                key = prefix.name + entry.name
                if is_digest(key):
                    yield key
