"""project.tracked: one record type for a tracked path, checked in one place for every
file that records one (pointer files, cairn.lock, run-cache entries)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cairn.errors import FormatError
from cairn.pipeline import runcache
from cairn.project import lockfile, pointer
from cairn.project.tracked import InvalidField, TrackedPath

D = "a" * 64


def test_a_record_is_normalised_and_joined_to_its_base() -> None:
    assert TrackedPath.parse("./data//raw/", D, 3, 2) == TrackedPath("data/raw", D, 3, 2)
    assert TrackedPath.parse("../shared/x", D, 1, base="sub").path == "shared/x"
    assert TrackedPath.parse("m.json", D, 1, cache=False, base="sub") == \
        TrackedPath("sub/m.json", D, 1, cache=False)
    assert TrackedPath.parse("x", D, 1, extra={"desc": "kept"}).extra == {"desc": "kept"}


@pytest.mark.parametrize(("fields", "key", "why"), [
    ({"path": ""}, "path", "is missing or not a string"),
    ({"path": 3}, "path", "is missing or not a string"),
    ({"path": "../x"}, "path", "'../x' climbs out of the workspace with '..'"),
    ({"path": "/etc/passwd"}, "path", "'/etc/passwd' is absolute, outside the workspace"),
    ({"path": ".git/hooks/x"}, "path", "'.git/hooks/x' is inside .git/, which git manages"),
    ({"path": "../../x", "base": "sub"}, "path", "'../../x' climbs out of the workspace"),
    ({"digest": "abc"}, "digest", "'abc' is not a blake3 digest"),
    ({"size": -1}, "size", "must be a non-negative integer"),
    ({"size": "1"}, "size", "must be a non-negative integer"),
    ({"nfiles": -2}, "nfiles", "must be a non-negative integer"),
    ({"cache": "no"}, "cache", "must be true or false"),
])
def test_the_first_bad_field_is_named(fields: dict[str, object], key: str, why: str) -> None:
    record: dict[str, object] = {"path": "x", "digest": D, "size": 1, **fields}
    with pytest.raises(InvalidField) as caught:
        TrackedPath.parse(**record)  # type: ignore[arg-type]
    assert caught.value.key == key and caught.value.why.startswith(why)
    assert str(caught.value) == f"{key} {caught.value.why}"


ESCAPES = ["../outside", ".git/config", ".CAIRN/config.toml", "/etc/passwd", "a/../../b"]


@pytest.mark.parametrize("escape", ESCAPES)
def test_every_file_that_records_paths_refuses_the_same_escapes(tmp_path: Path,
                                                                escape: str) -> None:
    ptr = f"outs:\n- path: {json.dumps(escape)}\n  hash: blake3\n  digest: {D}\n  size: 1\n"
    with pytest.raises(FormatError, match="x.cairn:2: out 'path' .*; an out names a path"):
        pointer.loads(ptr.encode(), tmp_path / "x.cairn")
    lock = (f"schema: cairn-lock/1\nstages:\n  s:\n    cmd: x\n    outs:\n"
            f"    - path: {json.dumps(escape)}\n      digest: {D}\n      size: 1\n")
    with pytest.raises(FormatError, match=r"cairn.lock:3: stage 's': path .*; delete the entry"):
        lockfile.loads(lock.encode(), "cairn.lock")
    entry = runcache.RunEntry({"cmd": ["x"]}, (TrackedPath(escape, D, 1),))
    assert runcache.decode(entry.to_bytes(), entry.key) is None
