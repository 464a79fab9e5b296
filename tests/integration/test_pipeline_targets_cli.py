"""Targets from a subdirectory, as in DVC monorepos: `cairn repro` and `cairn dag` read a
stage name, a pipeline file or an output relative to the current directory, and with no
target reproduce the pipeline of that directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import CliRepo

SUB_PIPELINE = """\
stages:
  s1:
    cmd: echo one > one.txt
    outs: [one.txt]
  s2:
    wdir: x
    cmd: cat ../one.txt > two.txt
    deps: [../one.txt]
    outs: [two.txt]
"""


@pytest.fixture
def subproject(repo: CliRepo) -> CliRepo:
    """A root pipeline consuming the output of a pipeline in proj/ (as with DVC monorepos)."""
    repo.write("proj/dvc.yaml", SUB_PIPELINE)
    (repo.root / "proj/x").mkdir()
    repo.write("cairn.yaml", "stages:\n  top:\n    cmd: cat proj/x/two.txt > top.txt\n"
                             "    deps: [proj/x/two.txt]\n    outs: [top.txt]\n")
    repo.cairn("repro")
    return repo


def would_run(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Would run")]


@pytest.mark.parametrize("target", ["s1", "dvc.yaml:s1", "one.txt", "dvc.yaml"])
def test_targets_are_read_from_the_current_directory(subproject: CliRepo, target: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # As `dvc repro s1` inside proj/ means proj/dvc.yaml:s1, so does `cairn repro s1`.
    monkeypatch.chdir(subproject.root / "proj")
    ran = would_run(subproject.cairn("repro", "-f", "--dry", target).output)
    assert ran[0] == "proj/dvc.yaml:s1"
    assert "top" not in ran


def test_targets_from_a_subdirectory_reach_other_files_too(subproject: CliRepo,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(subproject.root / "proj" / "x")
    assert would_run(subproject.cairn("repro", "-f", "--dry", "../dvc.yaml:s2").output) == [
        "proj/dvc.yaml:s1", "proj/dvc.yaml:s2"]
    assert would_run(subproject.cairn("repro", "-f", "--dry", "two.txt").output) == [
        "proj/dvc.yaml:s1", "proj/dvc.yaml:s2"]
    # A name as seen from the root still works anywhere.
    assert would_run(subproject.cairn("repro", "-f", "--dry", "top").output)[-1] == "top"
    monkeypatch.chdir(subproject.root / "proj")
    dag = subproject.cairn("dag", "--dot", "s2").output
    assert '"proj/dvc.yaml:s2"' in dag and '"top"' not in dag


def test_an_unknown_target_in_a_subdirectory_is_one_line(subproject: CliRepo,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(subproject.root / "proj")
    result = subproject.cairn("repro", "nosuch", ok=False)
    assert result.exit_code != 0
    assert result.stderr.count("\n") == 1 and "no stage 'nosuch'" in result.stderr
    assert not Path("nosuch").exists()


def test_repro_without_targets_in_a_pipeline_directory_runs_that_pipeline(
        subproject: CliRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    # As `dvc repro` in proj/ reproduces proj/dvc.yaml (and what it depends on), not the
    # root's stages; where no pipeline file is, every stage as before.
    monkeypatch.chdir(subproject.root / "proj")
    assert would_run(subproject.cairn("repro", "-f", "--dry").output) == [
        "proj/dvc.yaml:s1", "proj/dvc.yaml:s2"]
    monkeypatch.chdir(subproject.root / "proj" / "x")
    assert would_run(subproject.cairn("repro", "-f", "--dry").output) == [
        "proj/dvc.yaml:s1", "proj/dvc.yaml:s2", "top"]
