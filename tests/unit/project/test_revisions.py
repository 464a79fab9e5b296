"""revisions: which commits a scope names, and the pointer files committed at each."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.errors import FormatError, UserError
from cairn.project.context import ProjectContext
from cairn.project.pointer import PointerFile
from cairn.project.revisions import (
    RevisionScope,
    commits_in_scope,
    pointers_at,
    ref_commits,
)
from tests.unit.lifecycle.test_gc import commit, project, run_git, subproject, track

__all__ = ["project", "subproject"]  # fixtures shared with test_gc


def head(project: ProjectContext, rev: str = "HEAD") -> str:
    return run_git(project.root, "rev-parse", rev).strip()


def test_the_scope_describes_itself() -> None:
    assert not RevisionScope().uses_git
    assert RevisionScope().describe() == "workspace"
    scope = RevisionScope(("v1", "HEAD~2"), all_tags=True, all_commits=True)
    assert scope.uses_git
    assert scope.describe() == "workspace, rev v1, rev HEAD~2, all tags, all commits"


def test_commits_get_their_most_specific_name(project: ProjectContext) -> None:
    track(project, "model.pkl", "v1")
    commit(project, "one", tag="v1")
    one = head(project)
    run_git(project.root, "branch", "experiment")
    track(project, "model.pkl", "v2")
    commit(project, "two")
    two = head(project)
    git = project.git
    assert git is not None
    every = RevisionScope(all_tags=True, all_branches=True, all_commits=True)
    assert commits_in_scope(git, every) == {one: "tag v1", two: "branch main"}
    assert commits_in_scope(git, RevisionScope(all_commits=True)) == {
        one: f"commit {one[:10]}", two: f"commit {two[:10]}"}
    # A rev is named as the user wrote it, whatever else reaches it.
    assert commits_in_scope(git, RevisionScope(("HEAD~1",), all_tags=True)) == {one: "HEAD~1"}
    with pytest.raises(UserError, match="'nope' is not a git revision"):
        commits_in_scope(git, RevisionScope(("nope",), all_commits=True))


def test_tags_are_peeled_to_commits_and_tags_of_blobs_left_out(project: ProjectContext) -> None:
    track(project, "model.pkl", "v1")
    commit(project, "one")
    sha = head(project)
    run_git(project.root, "tag", "-a", "-m", "release", "release")
    run_git(project.root, "tag", "-a", "-m", "again", "release-of-release", "release")
    blob = run_git(project.root, "hash-object", "-w", "model.pkl.cairn").strip()
    run_git(project.root, "tag", "a-blob", blob)
    run_git(project.root, "branch", "release-of-release")  # a branch of the same name
    git = project.git
    assert git is not None
    assert ref_commits(git, "refs/tags/") == {"release": sha, "release-of-release": sha}


def test_pointers_at_a_commit(project: ProjectContext) -> None:
    track(project, "a.bin", "a")
    track(project, "data/b.bin", "b")
    commit(project, "one")
    sha = head(project)
    git = project.git
    assert git is not None
    found = dict(pointers_at(project, git, sha))
    assert sorted(found) == ["a.bin.cairn", "data/b.bin.cairn"]
    assert found["data/b.bin.cairn"].path == project.root / "data/b.bin.cairn"
    assert [o.path for o in found["data/b.bin.cairn"].outs] == ["b.bin"]
    for targets in (["data"], ["data/b.bin"], ["data/b.bin.cairn"]):
        assert [rel for rel, _ in pointers_at(project, git, sha, targets)] == \
            ["data/b.bin.cairn"]


def test_each_distinct_blob_is_parsed_once(project: ProjectContext) -> None:
    track(project, "a.bin", "a")
    commit(project, "one")
    one = head(project)
    track(project, "b.bin", "b")
    commit(project, "two")
    git = project.git
    assert git is not None
    parsed: dict[bytes, PointerFile] = {}
    list(pointers_at(project, git, one, parsed=parsed))
    first = next(iter(parsed.values()))
    second = dict(pointers_at(project, git, head(project), parsed=parsed))
    assert len(parsed) == 2 and next(iter(parsed.values())) is first
    assert second["a.bin.cairn"].outs is first.outs


def test_a_malformed_pointer_names_the_commit_and_path(project: ProjectContext) -> None:
    (project.root / "model.pkl.cairn").write_text("outs: [oops\n")
    commit(project, "broken")
    sha = head(project)
    git = project.git
    assert git is not None
    with pytest.raises(FormatError, match=f"^{sha}:model.pkl.cairn:"):
        list(pointers_at(project, git, sha))


def test_a_project_in_a_subdirectory(subproject: ProjectContext, tmp_path: Path) -> None:
    project = subproject
    track(project, "models/m.pkl", "v1")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/x.cairn").write_bytes(
        (project.root / "models/m.pkl.cairn").read_bytes())
    commit(project, "one")
    sha = head(project)
    git = project.git
    assert git is not None
    assert [rel for rel, _ in pointers_at(project, git, sha)] == ["models/m.pkl.cairn"]
    beyond = dict(pointers_at(project, git, sha, beyond_project=True))
    assert sorted(beyond) == ["elsewhere/x.cairn", "models/m.pkl.cairn"]
    assert beyond["elsewhere/x.cairn"].path == git.root / "elsewhere/x.cairn"
    assert list(pointers_at(project, git, sha, ["models"], beyond_project=True)) == [
        ("models/m.pkl.cairn", beyond["models/m.pkl.cairn"])]
