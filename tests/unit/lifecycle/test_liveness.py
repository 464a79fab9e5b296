"""gc keeps the outputs that cairn.lock files name, in the workspace and in git history."""

from __future__ import annotations

from cairn.lifecycle import liveness
from cairn.lifecycle.gc import gc
from cairn.objects.hashing import hash_bytes
from cairn.pipeline.repro import repro
from cairn.project.context import open_project
from cairn.project.revisions import RevisionScope
from tests.conftest import CliRepo


def test_gc_keeps_what_the_lock_names(repo: CliRepo) -> None:
    repo.write("in.txt", "x")
    repo.write("dvc.yaml", "stages:\n  copy:\n    cmd: cp in.txt out.txt\n"
               "    deps: [in.txt]\n    outs: [out.txt]\n")
    with open_project(repo.root) as project:
        repro(project)
        refs = liveness.in_scope(project, liveness.Scope(), [liveness.pipeline_locks])
        assert [(r.oid, r.path) for r in refs] == [(hash_bytes(b"x"), "out.txt")]
        gc(project, force=True, providers=[liveness.pipeline_locks])
        assert project.odb.exists(hash_bytes(b"x"))


def test_locks_committed_at_revisions_in_scope(repo: CliRepo) -> None:
    repo.write("in.txt", "v1")
    repo.write("dvc.yaml", "stages:\n  copy:\n    cmd: cp in.txt out.txt\n"
               "    deps: [in.txt]\n    outs: [out.txt]\n")
    with open_project(repo.root) as project:
        repro(project)
    repo.git("add", "cairn.lock", "dvc.yaml", ".gitignore", "in.txt")
    repo.git("commit", "-qm", "v1")
    repo.git("tag", "v1")
    repo.write("in.txt", "v2")
    with open_project(repo.root) as project:
        repro(project)
        gc(project, RevisionScope(all_tags=True), force=True, providers=[liveness.pipeline_locks])
        assert project.odb.exists(hash_bytes(b"v1")) and project.odb.exists(hash_bytes(b"v2"))
        gc(project, force=True, providers=[liveness.pipeline_locks])
        assert not project.odb.exists(hash_bytes(b"v1"))
