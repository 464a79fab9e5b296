"""`cairn gc` keeps what cairn.lock names: a stage's outputs are referenced by the lock."""

from __future__ import annotations

from cairn.objects.hashing import hash_bytes
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


def test_gc_force_keeps_metrics_git_keeps_that_the_run_cache_restores(repo: CliRepo) -> None:
    """A `cache: false` out lives in git, but repro stores its bytes in the cache too,
    so the run cache can restore it: the lock names it, so gc keeps it."""
    repo.write("cairn.yaml", "stages:\n  make:\n    cmd: echo 0.9 > m.json\n"
                             "    metrics:\n    - m.json:\n        cache: false\n")
    repo.cairn("repro")
    digest = hash_bytes(b"0.9\n")
    cached = repo.root / ".cairn" / "cache" / "objects" / digest[:2] / digest[2:]
    assert cached.is_file(), "repro stored the metrics file in the cache"

    repo.cairn("gc", "--force")

    assert cached.is_file()
