"""project.lockfile: the canonical form of cairn.lock, read back exactly by the fast reader
and by YAML; `cache: false`; and a lock viewed as a pointer file of its cached outs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cairn.errors import FormatError
from cairn.objects.hashing import hash_bytes
from cairn.project import lockfile
from cairn.project.lockfile import LockedStage, LockFile
from cairn.project.tracked import TrackedPath

D1, D2, D3 = "a" * 64, "b" * 64, "c" * 64


def stage(params: dict[str, dict[str, Any]] | None = None, cmd: tuple[str, ...] = ("run it",)
          ) -> LockedStage:
    return LockedStage(cmd, (TrackedPath("data/raw", D1, 10, 2),), params or {},
                       (TrackedPath("model.pkl", D2, 3),))


def test_canonical_form_is_pinned() -> None:
    lock = LockFile("cairn.lock", {"train": stage({"params.yaml": {"train.lr": 0.01}})})
    assert lockfile.dumps(lock).decode() == (
        "schema: cairn-lock/1\n"
        "stages:\n"
        "  train:\n"
        "    cmd: run it\n"
        "    deps:\n"
        "    - path: data/raw\n"
        f"      digest: {D1}\n"
        "      size: 10\n"
        "      nfiles: 2\n"
        "    params:\n"
        "      params.yaml:\n"
        "        train.lr: 0.01\n"
        "    outs:\n"
        "    - path: model.pkl\n"
        f"      digest: {D2}\n"
        "      size: 3\n")


TRICKY: list[Any] = [0.01, 1e-05, -3, 10**20, True, None, "yes", "no", "on", "null", "2024-01-01",
                     "1.5", ".5", "", " padded ", "a: b", "# not a comment", "über", "tab\there",
                     "line\nbreak", "del\x7f", "x y", "@at", "-dash", "[1]", 2.5e300]


@pytest.mark.parametrize("value", TRICKY, ids=repr)
def test_param_values_read_back_exactly(value: Any) -> None:
    lock = LockFile("cairn.lock", {"s": stage({"params.yaml": {"k": value, "a.b": value}})})
    data = lockfile.dumps(lock)
    for read in (lockfile.loads, lockfile.loads_yaml):
        back = read(data, "cairn.lock").stages["s"].params["params.yaml"]
        assert back == {"k": value, "a.b": value} and type(back["k"]) is type(value)
    assert yaml.safe_load(data)["stages"]["s"]["params"]["params.yaml"]["k"] == value


def test_structured_values_and_command_lists_fall_back_to_yaml() -> None:
    lock = LockFile("cairn.lock", {"s": stage({"p.json": {"layers": [64, {"act": "relu"}]}},
                                              cmd=("prep", "train --fast"))})
    data = lockfile.dumps(lock)
    assert lockfile._loads_canonical(data, "cairn.lock") is None
    assert lockfile.loads(data, "cairn.lock").stages == lock.stages


def test_fast_reader_matches_yaml_reader() -> None:
    lock = LockFile("cairn.lock", {
        "prep": stage(), "dvc.yaml:odd name": stage({"params.yaml": {}, "p.toml": {"x": "y"}})})
    data = lockfile.dumps(lock)
    fast = lockfile._loads_canonical(data, "cairn.lock")
    assert fast is not None
    assert fast.stages == lockfile.loads_yaml(data, "cairn.lock").stages == lock.stages


def test_paths_are_relative_to_the_lock_file() -> None:
    lock = LockFile("sub/cairn.lock", {"s": LockedStage(
        ("x",), (TrackedPath("sub/in.txt", D1, 1), TrackedPath("shared/data", D1, 1, 1)),
        {"sub/params.yaml": {"k": 1}}, (TrackedPath("sub/out.txt", D2, 1),))})
    data = lockfile.dumps(lock).decode()
    assert "- path: in.txt\n" in data and "- path: ../shared/data\n" in data
    assert "      params.yaml:\n" in data
    assert lockfile.loads(data.encode(), "sub/cairn.lock").stages == lock.stages


def test_unknown_keys_are_kept_when_rewritten(tmp_path: Path) -> None:
    text = (f"schema: cairn-lock/1\nwritten_by: cairn 9\nstages:\n  s:\n    cmd: x\n"
            f"    outs:\n    - path: o\n      digest: {D1}\n      size: 1\n"
            "    note: kept\n")
    lock = lockfile.loads(text.encode(), "cairn.lock")
    assert lock.extra == {"written_by": "cairn 9"}
    assert lock.stages["s"].extra == {"note": "kept"}
    lock.stages["t"] = stage()
    lockfile.write_lock(tmp_path, lock)
    again = lockfile.read_lock(tmp_path, "cairn.lock")
    assert again.extra == {"written_by": "cairn 9"} and again.stages["s"].extra == {"note": "kept"}


def test_a_newer_schema_is_refused() -> None:
    with pytest.raises(FormatError, match=r"cairn.lock:1: schema 'cairn-lock/2'.*upgrade Cairn"):
        lockfile.loads(b"schema: cairn-lock/2\nstages: {}\n", "cairn.lock")


def test_a_malformed_entry_names_file_and_line() -> None:
    text = "schema: cairn-lock/1\nstages:\n  s:\n    cmd: x\n    deps:\n    - path: d\n"
    with pytest.raises(FormatError, match=r"cairn.lock:3: stage 's'"):
        lockfile.loads(text.encode(), "cairn.lock")


def test_missing_lock_is_empty_and_write_replaces_atomically(tmp_path: Path) -> None:
    assert lockfile.read_lock(tmp_path, "cairn.lock").stages == {}
    lock = LockFile("cairn.lock", {"s": stage()})
    lockfile.write_lock(tmp_path, lock, durable=False)
    lockfile.sync_lock(tmp_path / "cairn.lock")
    assert lockfile.read_lock(tmp_path, "cairn.lock").stages == lock.stages
    assert [p.name for p in tmp_path.iterdir()] == ["cairn.lock"]  # no temp file left


def sample(rel: str = "cairn.lock") -> LockFile:
    base = rel.rpartition("/")[0]
    prefix = base + "/" if base else ""
    outs = (TrackedPath(f"{prefix}model.pkl", D1, 3), TrackedPath("shared/data", D2, 9, 2),
            TrackedPath(f"{prefix}metrics.json", D3, 5, cache=False))
    return LockFile(rel, {"train": LockedStage(("run",), (), {}, outs)})


def test_cache_false_is_written_and_read_back_by_both_readers() -> None:
    lock = sample()
    data = lockfile.dumps(lock)
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


GOLDEN = Path(__file__).parents[2] / "golden" / "cairn-lock-v1.yaml"


def digest(label: str) -> str:
    """A stand-in digest, the BLAKE3 of a label, so the golden reads like a real lock."""
    return hash_bytes(label.encode())


def golden_lock() -> LockFile:
    """What tests/golden/cairn-lock-v1.yaml records: DVC's example pipeline, repro'd."""
    prepared = TrackedPath("data/prepared", digest("prepared"), 6_291_456, 2)
    models = TrackedPath("models", digest("models"), 1_048_917, 3)
    return LockFile("cairn.lock", {
        "prepare": LockedStage(
            ("python src/prepare.py data/data.xml",),
            (TrackedPath("data/data.xml", digest("data.xml"), 37_891_850),
             TrackedPath("src/prepare.py", digest("prepare.py"), 1_576)),
            {"params.yaml": {"prepare.seed": 20170428, "prepare.split": 0.2}},
            (prepared,)),
        "train": LockedStage(
            ("python src/train.py data/prepared models",),
            (prepared, TrackedPath("src/train.py", digest("train.py"), 967)),
            {"params.yaml": {"train.n_est": 50, "train.min_split": 0.01, "train.tol": 1e-05,
                             "train.criterion": "gini", "train.warm_start": False}},
            (models, TrackedPath("train_metrics.json", digest("train_metrics"), 73, cache=False))),
        "evaluate": LockedStage(
            ("python src/evaluate.py models data/prepared",),
            (models, prepared, TrackedPath("src/evaluate.py", digest("evaluate.py"), 2_240)),
            {},
            (TrackedPath("eval/metrics.json", digest("metrics"), 57, cache=False),
             TrackedPath("eval/plots/prc.json", digest("prc"), 41_021, cache=False))),
    })


def test_the_golden_lock_reads_as_its_stages_and_is_written_byte_for_byte() -> None:
    data = GOLDEN.read_bytes()
    expected = golden_lock()
    fast = lockfile._loads_canonical(data, "cairn.lock")
    assert fast is not None  # the canonical form needs no YAML parser
    for read in (fast, lockfile.loads_yaml(data, "cairn.lock")):
        assert read.stages == expected.stages and list(read.stages) == list(expected.stages)
        assert read.extra == {}
    assert lockfile.dumps(expected) == data
