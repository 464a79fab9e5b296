"""`cairn gc` keeps what cairn.lock names: a stage's outputs are referenced by the lock."""

from __future__ import annotations

from tests.conftest import CliRepo


def test_gc_force_keeps_the_outputs_a_lock_names(repo: CliRepo) -> None:
    repo.write("cairn.yaml", "stages:\n  make:\n    cmd: echo built > out.txt\n"
                             "    outs:\n    - out.txt\n")
    repo.cairn("repro")
    objects = sorted(p for p in (repo.root / ".cairn" / "cache" / "objects").rglob("*")
                     if p.is_file())
    assert objects, "repro stored the output in the cache"

    result = repo.cairn("gc", "--workspace", "--force")

    still_there = [p for p in objects if p.exists()]
    assert still_there == objects, result.output
