"""workspace.lockfile: the one cairn.lock reader, `cache: false`, and a lock viewed as a
pointer file of its cached outs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.errors import FormatError
from cairn.pipeline import lock as writer
from cairn.project import lockfile
from cairn.project.lockfile import LockedPath, LockedStage, LockFile

D1, D2, D3 = "a" * 64, "b" * 64, "c" * 64


def sample(rel: str = "cairn.lock") -> LockFile:
    base = rel.rpartition("/")[0]
    prefix = base + "/" if base else ""
    outs = (LockedPath(f"{prefix}model.pkl", D1, 3), LockedPath("shared/data", D2, 9, 2),
            LockedPath(f"{prefix}metrics.json", D3, 5, cache=False))
    return LockFile(rel, {"train": LockedStage(("run",), (), {}, outs)})


def test_cache_false_is_written_and_read_back_by_both_readers() -> None:
    lock = sample()
    data = writer.dumps(lock)
    assert b"      size: 5\n      cache: false\n" in data
    assert data.count(b"cache:") == 1  # a missing key means cached
    fast = lockfile._loads_canonical(data, "cairn.lock")
    assert fast is not None
    assert fast.stages == lockfile.loads_yaml(data, "cairn.lock").stages == lock.stages


def test_a_lock_without_the_key_is_all_cached() -> None:
    text = f"schema: cairn-lock/1\nstages:\n  s:\n    cmd: x\n    outs:\n    - path: o\n" \
           f"      digest: {D1}\n      size: 1\n"
    assert lockfile.loads(text.encode(), "cairn.lock").stages["s"].outs[0].cache


def test_a_cache_value_that_is_not_a_boolean_names_the_line() -> None:
    text = f"schema: cairn-lock/1\nstages:\n  s:\n    cmd: x\n    outs:\n    - path: o\n" \
           f"      digest: {D1}\n      size: 1\n      cache: maybe\n"
    with pytest.raises(FormatError, match=r"cairn.lock:3: stage 's'.*cache must be true"):
        lockfile.loads(text.encode(), "cairn.lock")


def test_viewed_as_a_pointer_a_lock_names_its_cached_outs_only(tmp_path: Path) -> None:
    view = sample("sub/cairn.lock").as_pointer(tmp_path)
    assert [o.path for o in view.outs] == ["model.pkl", "../shared/data"]
    assert [view.out_path(o) for o in view.outs] == [tmp_path / "sub/model.pkl",
                                                     tmp_path / "shared/data"]
    assert view.outs[1].is_dir and not view.outs[0].is_dir
    only = sample().as_pointer(tmp_path, ["shared/data"])
    assert [o.digest for o in only.outs] == [D2]


def test_pipeline_lock_reads_with_the_same_parser() -> None:
    assert writer.loads is lockfile.loads and writer.LockedPath is LockedPath
