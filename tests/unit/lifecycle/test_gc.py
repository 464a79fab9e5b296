"""gc: what is referenced in each scope, the only-copy rule, dry runs, providers, --cloud."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.errors import FormatError, LockError, NotFoundError, UserError
from cairn.lifecycle import gc as gc_module
from cairn.lifecycle import liveness
from cairn.lifecycle.gc import gc
from cairn.lifecycle.liveness import Reference, Sources
from cairn.objects.hashing import hash_bytes
from cairn.objects.odb import ObjectDB
from cairn.objects.transfer import transfer
from cairn.objects.tree import read_tree
from cairn.project import pointer
from cairn.project.context import ProjectContext, open_project
from cairn.project.mutex import repo_lock
from cairn.project.revisions import RevisionScope
from cairn.remotes.connect import open_remote
from cairn.remotes.settings import remote_add
from cairn.workspace.add import add
from cairn.workspace.init import init


def push_everything(odb: ObjectDB, remote: ObjectDB) -> None:
    transfer(odb, remote, list(odb.list_oids())).raise_for_failures("pushed")


def on_remote(remote: ObjectDB) -> set[str]:
    return set(remote.list_oids())


def run_git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProjectContext]:
    root = tmp_path / "repo"
    root.mkdir()
    run_git(root, "init", "-q", "-b", "main")
    init(root, hooks=False)
    monkeypatch.chdir(root)
    with open_project(root) as p:
        yield p


@pytest.fixture
def remote(project: ProjectContext, tmp_path: Path) -> ObjectDB:
    """The default remote "origin", a local directory."""
    remote_add(project.config, "origin", str(tmp_path / "remote"), default=True)
    return open_remote(project.config)


def track(project: ProjectContext, rel: str, data: bytes | str) -> str:
    """Write `rel` and `cairn add` it; return its digest."""
    path = project.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    add(project, [rel])
    return pointer.load(pointer.pointer_path_for(path)).outs[0].digest


def commit(project: ProjectContext, message: str, tag: str | None = None) -> None:
    run_git(project.root, "add", "-A")
    run_git(project.root, "commit", "-qm", message)
    if tag:
        run_git(project.root, "tag", tag)


def cached(project: ProjectContext) -> set[str]:
    return set(project.odb.list_oids())


def test_keeps_what_the_workspace_references_and_removes_the_rest(project: ProjectContext) -> None:
    old = track(project, "model.pkl", "model v1")
    new = track(project, "model.pkl", "model v2")
    result = gc(project, force=True)
    assert result.removed == {old: len("model v1")}
    assert result.bytes_freed == 8 and not result.dry_run
    assert cached(project) == {new}


def test_all_tags_keeps_a_tagged_old_version(project: ProjectContext) -> None:
    old = track(project, "model.pkl", "model v1")
    commit(project, "v1", tag="model-v1")
    new = track(project, "model.pkl", "model v2")
    commit(project, "v2")
    assert gc(project, RevisionScope(all_tags=True), force=True).removed == {}
    assert cached(project) == {old, new}
    assert old in gc(project, force=True).removed  # outside the workspace scope
    assert cached(project) == {new}


def test_all_branches_and_all_commits_widen_the_scope(project: ProjectContext) -> None:
    v1 = track(project, "model.pkl", "v1")
    commit(project, "v1")
    v2 = track(project, "model.pkl", "v2")
    commit(project, "v2")
    run_git(project.root, "branch", "experiment")
    v3 = track(project, "model.pkl", "v3")
    commit(project, "v3")
    v4 = track(project, "model.pkl", "v4 in the workspace only")
    assert set(gc(project, RevisionScope(all_branches=True), dry_run=True, force=True).removed) \
        == {v1}
    assert gc(project, RevisionScope(all_commits=True), force=True).removed == {}
    assert cached(project) == {v1, v2, v3, v4}


def test_annotated_tags_and_tags_of_blobs(project: ProjectContext) -> None:
    old = track(project, "model.pkl", "v1")
    commit(project, "v1")
    run_git(project.root, "tag", "-a", "-m", "release", "release-1")
    blob = run_git(project.root, "hash-object", "-w", "model.pkl.cairn").strip()
    run_git(project.root, "tag", "a-blob", blob)  # no commit, so no pointer files
    track(project, "model.pkl", "v2")
    assert gc(project, RevisionScope(all_tags=True), force=True).removed == {}
    assert old in cached(project)


def test_directories_keep_manifests_and_files_shared_between_versions(
        project: ProjectContext) -> None:
    for i in range(3):
        (project.root / "data" / "sub").mkdir(parents=True, exist_ok=True)
        (project.root / f"data/sub/f{i}.txt").write_text(f"row {i}")
    v1 = _add_dir(project)
    commit(project, "v1", tag="v1")
    (project.root / "data/sub/f2.txt").write_text("row 2, fixed")
    v2 = _add_dir(project)
    result = gc(project, force=True)
    assert hash_bytes(b"row 2") in result.removed
    assert {hash_bytes(b"row 0"), hash_bytes(b"row 2, fixed")} <= cached(project)
    assert v1 in result.removed and v2 in cached(project)
    sub = next(e.digest for e in read_tree(project.odb, v2) if e.name == "sub")
    assert sub in cached(project)


def _add_dir(project: ProjectContext) -> str:
    add(project, ["data"])
    return pointer.load(project.root / "data.cairn").outs[0].digest


def test_dry_run_lists_everything_and_changes_nothing(project: ProjectContext) -> None:
    old = track(project, "model.pkl", b"x" * 1000)
    track(project, "model.pkl", "v2")
    before = cached(project)
    result = gc(project, force=True, dry_run=True)
    assert result.dry_run and result.removed == {old: 1000} and result.bytes_freed == 1000
    assert cached(project) == before


def test_without_a_remote_nothing_is_deleted_without_force(project: ProjectContext) -> None:
    old = track(project, "model.pkl", "v1")
    track(project, "model.pkl", "v2")
    result = gc(project)
    assert result.remote is None
    assert result.removed == {} and result.kept_only_copy == {old: 2}
    assert old in cached(project)


def test_only_objects_the_remote_holds_leave_the_cache(project: ProjectContext,
                                                       remote: ObjectDB) -> None:
    pushed = track(project, "a.bin", "pushed v1")
    push_everything(project.odb, remote)
    track(project, "a.bin", "pushed v2")
    unpushed = track(project, "b.bin", "never pushed")
    track(project, "b.bin", "b v2")
    result = gc(project)
    assert result.remote == "origin"
    assert set(result.removed) == {pushed}
    assert set(result.kept_only_copy) == {unpushed}
    assert pushed not in cached(project) and unpushed in cached(project)
    assert remote.exists(pushed)  # the cache-only gc never touches the remote


def test_cloud_deletes_unreferenced_remote_objects_too(project: ProjectContext,
                                                       remote: ObjectDB) -> None:
    old = track(project, "model.pkl", "v1")
    commit(project, "v1", tag="v1")
    older = track(project, "model.pkl", "v2")
    current = track(project, "model.pkl", "v3")
    push_everything(project.odb, remote)
    dry = gc(project, RevisionScope(all_tags=True), cloud=True, dry_run=True)
    assert dry.removed_from_remote == {older: 2} and dry.remote_bytes_freed == 2
    assert on_remote(remote) == {old, older, current}
    result = gc(project, RevisionScope(all_tags=True), cloud=True)
    assert on_remote(remote) == {old, current}
    assert cached(project) == {old, current} and set(result.removed) == {older}


def test_cloud_without_any_remote_is_refused(project: ProjectContext) -> None:
    track(project, "a.bin", "a")
    with pytest.raises(UserError, match=r"gc --cloud needs a remote.*-r NAME"):
        gc(project, cloud=True)


def test_cloud_reads_a_manifest_missing_locally_from_the_remote(project: ProjectContext,
                                                                remote: ObjectDB) -> None:
    (project.root / "data").mkdir()
    (project.root / "data/a.txt").write_text("a")
    tree = _add_dir(project)
    push_everything(project.odb, remote)
    project.odb.remove([tree])  # the cache lost the manifest; the remote still has it
    gc(project, cloud=True)
    assert on_remote(remote) == {tree, hash_bytes(b"a")}


def test_a_manifest_that_is_nowhere_stops_cloud_and_force(project: ProjectContext,
                                                          remote: ObjectDB) -> None:
    (project.root / "data").mkdir()
    (project.root / "data/a.txt").write_text("a")
    tree = _add_dir(project)
    push_everything(project.odb, remote)
    project.odb.remove([tree])
    remote.remove([tree])
    for kwargs in ({"cloud": True}, {"force": True}):
        with pytest.raises(NotFoundError, match=f"cannot read the manifest {tree} of data"):
            gc(project, **kwargs)  # type: ignore[arg-type]
    assert remote.exists(hash_bytes(b"a"))
    # Without either, the child is safe anyway: the remote holds a copy.
    assert set(gc(project).removed) == {hash_bytes(b"a")}


def test_what_the_providers_name_is_kept_whatever_the_scope(project: ProjectContext) -> None:
    registered = track(project, "model.pkl", "a registered model")
    track(project, "model.pkl", "the next model")
    seen: list[dict[str, str]] = []

    def registry(sources: Sources) -> list[Reference]:
        seen.append(sources.commits)
        return [Reference(registered, path="models:/fraud/3", source="registry")]

    assert gc(project, force=True, providers=[*liveness.PROVIDERS, registry]).removed == {}
    assert registered in cached(project) and seen == [{}]
    assert set(gc(project, force=True).removed) == {registered}  # nothing else names it


def test_a_malformed_pointer_in_history_stops_gc(project: ProjectContext) -> None:
    track(project, "model.pkl", "v1")
    (project.root / "model.pkl.cairn").write_text("outs: [oops\n")
    commit(project, "broken", tag="broken")
    (project.root / "model.pkl.cairn").unlink()
    with pytest.raises(FormatError, match=r"model.pkl.cairn.*\(in tag broken\).*out of the gc"):
        gc(project, RevisionScope(all_tags=True), force=True)


@pytest.fixture
def subproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProjectContext]:
    """A project in `ml/` of a git repository at `tmp_path`."""
    run_git(tmp_path, "init", "-q", "-b", "main")
    root = tmp_path / "ml"
    root.mkdir()
    init(root, hooks=False)
    monkeypatch.chdir(root)
    with open_project(root) as project:
        yield project


def test_pointer_paths_in_a_subdirectory_project(subproject: ProjectContext) -> None:
    project = subproject
    old = track(project, "models/m.pkl", "v1")
    commit(project, "v1", tag="v1")
    track(project, "models/m.pkl", "v2")
    refs = liveness.in_scope(project, gc_module.gc_scope(RevisionScope(all_tags=True)),
                             [liveness.workspace_pointers])
    assert Reference(old, False, "models/m.pkl", "tag v1") in refs


def test_git_scopes_need_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init(tmp_path, no_scm=True)
    monkeypatch.chdir(tmp_path)
    with open_project(tmp_path) as project, pytest.raises(UserError, match="not in a git"):
        gc(project, RevisionScope(all_tags=True))


def test_gc_takes_the_repository_lock(project: ProjectContext) -> None:
    project.config.set("core.lock_timeout", "0.1")
    with repo_lock(project.tmp_dir / "lock"), pytest.raises(LockError):
        gc(project, force=True)
