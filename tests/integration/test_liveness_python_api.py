"""gc and push from Python, in an interpreter that imported nothing else, keep and send
what cairn.lock names and what the registry names: what is live does not depend on which
modules the caller happened to import (it once did: gc deleted a stage's outputs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cairn.objects.hashing import hash_bytes
from tests.conftest import CliRepo

FRESH = """
import json
from cairn.commands import data
plan = data.gc(force=True, dry_run=True)
pushed = data.push()
print(json.dumps({"would_remove": sorted(plan.removed),
                  "pushed": sorted(pushed.transferred.transferred)}))
"""


def test_gc_and_push_from_a_fresh_interpreter_keep_and_send_what_is_live(
        repo: CliRepo, tmp_path: Path) -> None:
    repo.write("cairn.yaml", "stages:\n  make:\n    cmd: echo built > out.txt\n"
                             "    outs:\n    - out.txt\n")
    repo.cairn("repro")
    stage_out = hash_bytes(b"built\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"registered weights")
    repo.cairn("models", "register", str(tmp_path / "model"), "--name", "fraud")
    weights = hash_bytes(b"registered weights")
    repo.write("scratch.txt", "nobody needs this")
    repo.cairn("add", "scratch.txt")
    (repo.root / "scratch.txt.cairn").unlink()
    (tmp_path / "storage").mkdir()
    repo.cairn("remote", "add", "-d", "origin", str(tmp_path / "storage"))

    proc = subprocess.run([sys.executable, "-c", FRESH], cwd=repo.root, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)

    assert found["would_remove"] == [hash_bytes(b"nobody needs this")]
    assert {stage_out, weights} <= set(found["pushed"])
