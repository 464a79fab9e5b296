"""Pipelines as a DVC user drives them: defects found in review, each pinned by a test."""

from __future__ import annotations

import shutil
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


def test_get_an_older_tag_from_a_remote_added_after_it(repo: CliRepo, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # The usual order: tag model-v1, later set up a remote and push every tag. The config
    # committed at model-v1 names no remote, yet the repository's remote has the bytes.
    repo.write("model.pkl", "weights v1")
    repo.cairn("add", "model.pkl")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "v1")
    repo.git("tag", "model-v1")
    repo.cairn("remote", "add", "-d", "store", str(tmp_path / "remote"))
    repo.git("add", "-A")
    repo.git("commit", "-qm", "a remote")
    repo.cairn("push", "--all-tags")
    clone = tmp_path / "clone"
    repo.git("clone", "-q", str(repo.root), str(clone))
    monkeypatch.chdir(tmp_path)  # outside any repository: no cache but the remote's
    for args in ((), ("-r", "store")):
        out = tmp_path / f"v1{len(args)}.pkl"
        repo.cairn("get", str(clone), "model.pkl", "--rev", "model-v1", "-o", str(out), *args)
        assert out.read_text() == "weights v1"


def test_metrics_show_of_an_unreadable_file_does_not_say_none_are_declared(repo: CliRepo) -> None:
    repo.write("cairn.yaml", "stages:\n  a:\n    cmd: echo\n"
                             "    metrics: [{m.json: {cache: false}}]\n")
    repo.write("m.json", '{"acc": 1')
    result = repo.cairn("metrics", "show", ok=False)
    assert "m.json:1: invalid JSON" in result.stderr
    assert "declare them" not in result.stderr
    # Nothing to show: one error line naming the file and why, and a failing exit.
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: m.json:1: ")
    assert result.stdout == ""


def test_metrics_show_warns_of_an_unreadable_file_and_shows_the_others(repo: CliRepo) -> None:
    # As DVC: a warning names the file that could not be read; what can be read is shown.
    repo.write("cairn.yaml", "stages:\n  a:\n    cmd: echo\n"
                             "    metrics: [{m.json: {cache: false}}, {n.json: {cache: false}}]\n")
    repo.write("m.json", '{"acc": 1')
    repo.write("n.json", '{"f1": 0.5}')
    result = repo.cairn("metrics", "show")
    assert result.stderr.startswith("warning: m.json:1: invalid JSON")
    assert result.stderr.count("\n") == 1
    assert "n.json  0.5" in result.stdout


def test_a_stage_whose_only_inputs_are_params_is_restored_from_the_run_cache(
        repo: CliRepo) -> None:
    # DVC counts params among a stage's deps: lr 1 -> 2 -> 1 restores the first run.
    repo.write("cairn.yaml", "stages:\n  p:\n    cmd: echo ${lr} $(date +%N) > p.txt\n"
                             "    params: [lr]\n    outs: [p.txt]\n")
    repo.write("params.yaml", "lr: 1\n")
    repo.cairn("repro")
    first = (repo.root / "p.txt").read_text()
    repo.write("params.yaml", "lr: 2\n")
    repo.cairn("repro")
    repo.write("params.yaml", "lr: 1\n")
    assert "Restored stage 'p' from the run cache" in repo.cairn("repro").output
    assert (repo.root / "p.txt").read_text() == first


@pytest.mark.parametrize("args", [(), ("--downstream", "use")])
def test_a_dep_missing_because_its_producer_did_not_run_names_that_stage(
        repo: CliRepo, args: tuple[str, ...]) -> None:
    # "add the stage that produces it" is the wrong advice when there is one.
    repo.write("in.txt", "1\n")
    repo.write("cairn.yaml", "stages:\n  fr:\n    cmd: cp in.txt fr.txt\n    deps: [in.txt]\n"
                             "    outs: [fr.txt]\n    frozen: true\n"
                             "  use:\n    cmd: cp fr.txt use.txt\n    deps: [fr.txt]\n"
                             "    outs: [use.txt]\n")
    result = repo.cairn("repro", *args, ok=False)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "its dep fr.txt does not exist" in result.stderr
    assert "stage 'fr' produces it" in result.stderr
    assert "add the stage" not in result.stderr


def test_exponent_floats_in_params_are_numbers_as_in_dvc(repo: CliRepo) -> None:
    # `lr: 1e-3` is a float in YAML 1.2 (DVC's ruamel); PyYAML's YAML 1.1 made it a string:
    # `${lr}` became "1e-3" where DVC writes 0.001, and params diff had no Change.
    repo.write("params.yaml", "lr: 1e-3\nwd: 5E-4\n")
    repo.write("cairn.yaml", "stages:\n  a:\n    cmd: echo ${lr} ${wd} > a.txt\n"
                             "    params: [lr, wd]\n    outs: [a.txt]\n")
    repo.cairn("repro")
    assert (repo.root / "a.txt").read_text() == "0.001 0.0005\n"
    repo.git("add", "-A")
    repo.git("commit", "-qm", "one")
    repo.write("params.yaml", "lr: 2e-3\nwd: 5E-4\n")
    out = repo.cairn("params", "diff", "--json").output
    assert '"diff": 0.001' in out
    assert "param lr 0.001 → 0.002" in repo.cairn("repro", "--dry").output


def test_params_follow_yaml_1_2_core_as_in_dvc(repo: CliRepo) -> None:
    # What DVC 3 (ruamel, YAML 1.2) writes for these values; YAML 1.1 read `on`/`yes` as
    # true, 010 as 8 (octal), 0o10 as a string and 1:20 as 80 (base 60).
    repo.write("params.yaml", "a: on\nb: yes\nc: 010\nd: 0o10\ne: 1:20\nf: .inf\ng: True\n")
    repo.write("cairn.yaml", "stages:\n  s:\n    cmd: echo ${a} ${b} ${c} ${d} ${e} ${f} ${g}"
                             " > o.txt\n    params: [a, b, c, d, e, f, g]\n    outs: [o.txt]\n")
    repo.cairn("repro")
    assert (repo.root / "o.txt").read_text() == "on yes 10 8 1:20 inf true\n"
    assert "didn't change" in repo.cairn("repro").output


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


def test_a_missing_dep_tracked_by_a_pointer_file_says_to_check_it_out(repo: CliRepo) -> None:
    repo.write("data/raw.csv", "1\n")
    repo.cairn("add", "data")
    repo.write("cairn.yaml", "stages:\n  a:\n    cmd: cp data/raw.csv a.txt\n"
                             "    deps: [data/raw.csv]\n    outs: [a.txt]\n")
    shutil.rmtree(repo.root / "data")
    result = repo.cairn("repro", ok=False)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "data.cairn tracks it; run `cairn pull data`" in result.stderr


def test_plots_diff_to_a_path_it_cannot_write_is_one_line(repo: CliRepo) -> None:
    repo.write("cairn.yaml", "stages:\n  a:\n    cmd: echo\n"
                             "    plots: [{loss.csv: {cache: false}}]\n")
    repo.write("loss.csv", "step,loss\n0,1\n1,0.5\n")
    blocker = repo.write("blocker", "a file, not a directory\n")
    result = repo.cairn("plots", "diff", "-o", str(blocker / "plots.html"), ok=False)
    assert result.exit_code == 2, result.stderr  # bad input: the -o path
    assert result.stderr.count("\n") == 1
    assert "cannot write" in result.stderr and "-o" in result.stderr


@pytest.mark.parametrize(("out", "said"), [(".cairn/cache", "inside .cairn/"),
                                           (".git/hooks", "inside .git/"),
                                           (".", "the repository root")])
def test_an_output_cairn_or_git_owns_is_refused_before_anything_runs(
        repo: CliRepo, out: str, said: str) -> None:
    # repro moves a stage's outs aside before it runs: never the cache or .git.
    repo.write("cairn.yaml", f"stages:\n  a:\n    cmd: touch ran\n    outs: ['{out}']\n")
    result = repo.cairn("repro", ok=False)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert said in result.stderr and "stage 'a'" in result.stderr
    assert not (repo.root / "ran").exists()
    assert (repo.root / ".cairn" / "cache").is_dir() and (repo.root / ".git" / "hooks").is_dir()


def test_a_pipeline_file_without_stages_is_not_called_missing(repo: CliRepo) -> None:
    repo.write("dvc.yaml", "stages:\n")
    result = repo.cairn("repro", ok=False)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "dvc.yaml declares no stages" in result.stderr
