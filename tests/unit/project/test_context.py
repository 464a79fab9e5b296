import os
from pathlib import Path

import pytest

from cairn.errors import NotARepositoryError, PathError
from cairn.project.context import FORMAT_VERSION, ProjectContext
from cairn.workspace.init import init


@pytest.fixture
def repo(tmp_path: Path) -> ProjectContext:
    init(tmp_path / "proj", no_scm=True)
    return ProjectContext.find(tmp_path / "proj")


def test_found_from_a_subdirectory(repo: ProjectContext) -> None:
    sub = repo.root / "a" / "b"
    sub.mkdir(parents=True)
    assert ProjectContext.find(sub).root == repo.root


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(NotARepositoryError, match="run `cairn init`"):
        ProjectContext.find(tmp_path)


def test_a_newer_format_is_refused(repo: ProjectContext) -> None:
    repo.config.set("format", str(FORMAT_VERSION + 1))
    with pytest.raises(NotARepositoryError, match="format 2.*upgrade Cairn"):
        ProjectContext.find(repo.root)


def test_init_twice_is_harmless(repo: ProjectContext) -> None:
    repo.config.set("core.remote", "origin")
    result = init(repo.root, no_scm=True)
    assert not result.created
    assert repo.config.get("core.remote") == "origin"


def test_init_outside_git_needs_no_scm(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="git init"):
        init(tmp_path)


@pytest.mark.parametrize(("given", "message"), [
    ("../elsewhere", "outside the repository"),
    ("/etc/passwd", "outside the repository"),
    (".git/config", r"inside \.git/"),
    (".cairn/config.toml", r"inside \.cairn/"),
    (".", "repository root itself"),
])
def test_user_paths_stay_inside(repo: ProjectContext, given: str, message: str) -> None:
    with pytest.raises(PathError, match=message):
        repo.relpath(given, cwd=repo.root)


def test_symlinked_parent_cannot_lead_out(repo: ProjectContext, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, repo.root / "link")
    with pytest.raises(PathError, match="through the symlink link to .*leaves the workspace"):
        repo.relpath("link/file", cwd=repo.root)
    assert repo.relpath("./a/../b", cwd=repo.root) == "b"
