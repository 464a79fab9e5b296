"""`cairn params diff`, `metrics show/diff`, `plots diff` through the CLI, on the seed's
workflow: two tagged model versions compared without loading either model; a file that
cannot be read or written is named in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CliRepo

PIPELINE = """\
stages:
  train:
    cmd: python src/train.py
    params: [train.learning_rate, train.epochs]
    outs: [models/classifier.pkl]
    metrics:
    - metrics.json: {cache: false}
    plots:
    - loss.csv: {cache: false, x: epoch, y: loss}
"""


def release(repo: CliRepo, tag: str, lr: float, accuracy: float, f1: float) -> None:
    repo.write("params.yaml", f"train:\n  learning_rate: {lr}\n  epochs: 50\n")
    repo.write("metrics.json", json.dumps({"accuracy": accuracy, "f1": f1}))
    repo.write("loss.csv", f"epoch,loss\n1,0.9\n2,{1 - accuracy:.3f}\n")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", tag)
    repo.git("tag", tag)


@pytest.fixture
def versions(repo: CliRepo) -> CliRepo:
    repo.write("cairn.yaml", PIPELINE)
    # A "model" that must never be read: comparing metrics must not need it.
    repo.write(".gitignore", "/models/\n")
    release(repo, "model-v1", 0.01, 0.9, 0.85)
    release(repo, "model-v2", 0.02, 0.94, 0.91)
    return repo


def test_metrics_diff_between_tags_shows_deltas(versions: CliRepo) -> None:
    out = versions.cairn("metrics", "diff", "model-v1", "model-v2").stdout
    lines = [line.split() for line in out.splitlines()]
    assert lines == [["Path", "Metric", "model-v1", "model-v2", "Change"],
                     ["metrics.json", "accuracy", "0.9", "0.94", "0.04"],
                     ["metrics.json", "f1", "0.85", "0.91", "0.06"]]


def test_metrics_diff_json_and_precision(versions: CliRepo) -> None:
    out = versions.cairn("metrics", "diff", "model-v1", "model-v2", "--json",
                         "--precision", "1").stdout
    assert json.loads(out) == {"metrics.json": {
        "accuracy": {"old": 0.9, "new": 0.9, "diff": 0.0},
        "f1": {"old": 0.8, "new": 0.9, "diff": 0.1}}}


def test_metrics_diff_markdown_with_all(versions: CliRepo) -> None:
    versions.write("metrics.json", json.dumps({"accuracy": 0.94, "f1": 0.95}))
    out = versions.cairn("metrics", "diff", "--md", "--all").stdout  # HEAD vs workspace
    assert out.splitlines() == [
        "| Path | Metric | HEAD | workspace | Change |",
        "|------|--------|------|-----------|--------|",
        "| metrics.json | accuracy | 0.94 | 0.94 | 0.0 |",
        "| metrics.json | f1 | 0.91 | 0.95 | 0.04 |"]


def test_metrics_diff_without_changes_says_so(versions: CliRepo) -> None:
    result = versions.cairn("metrics", "diff")
    assert result.stdout == ""
    assert "No metric changes between HEAD and workspace" in result.stderr


def test_metrics_show_all_tags(versions: CliRepo) -> None:
    out = versions.cairn("metrics", "show", "-T").stdout
    assert [line.split() for line in out.splitlines()] == [
        ["Revision", "Path", "accuracy", "f1"],
        ["workspace", "metrics.json", "0.94", "0.91"],
        ["model-v1", "metrics.json", "0.9", "0.85"],
        ["model-v2", "metrics.json", "0.94", "0.91"]]
    shown = json.loads(versions.cairn("metrics", "show", "--json").stdout)
    assert shown == {"workspace": {"metrics.json": {"accuracy": 0.94, "f1": 0.91}}}


def test_params_diff(versions: CliRepo) -> None:
    out = versions.cairn("params", "diff", "model-v1", "model-v2").stdout
    assert [line.split() for line in out.splitlines()] == [
        ["Path", "Param", "model-v1", "model-v2", "Change"],
        ["params.yaml", "train.learning_rate", "0.01", "0.02", "0.01"]]
    diffed = json.loads(versions.cairn("params", "diff", "model-v1", "--json", "--all").stdout)
    assert diffed["params.yaml"]["train.epochs"] == {"old": 50, "new": 50, "diff": 0}


def test_an_unknown_revision_is_one_line_and_exit_2(versions: CliRepo) -> None:
    result = versions.cairn("metrics", "diff", "model-v1", "model-v9", ok=False)
    assert result.exit_code == 2
    assert result.stderr == ("error: 'model-v9' is not a git revision here; "
                             "see `git log` or `git tag`\n")


def test_json_and_md_together_are_refused(versions: CliRepo) -> None:
    result = versions.cairn("params", "diff", "--json", "--md", ok=False)
    assert result.exit_code == 2 and "choose one of --json and --md" in result.stderr


def test_plots_diff_writes_html_and_png(versions: CliRepo) -> None:
    out = versions.cairn("plots", "diff", "model-v1", "model-v2", "-o", "report/p.html",
                         "--png").stdout
    html, png = (Path(line) for line in out.splitlines())
    assert html == versions.root / "report/p.html" and png == html.with_suffix(".png")
    assert 'data-revision="model-v1"' in html.read_text()
    assert 'data-revision="model-v2"' in html.read_text()
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_the_real_entry_point_compares_tags(versions: CliRepo) -> None:
    proc = versions.cairn_process("metrics", "diff", "model-v1", "model-v2", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["metrics.json"]["f1"]["new"] == 0.91


def test_comparing_tags_imports_no_heavy_library(versions: CliRepo) -> None:
    """`metrics diff` is benchmarked against DVC's: no Rich (output is not a terminal),
    no fsspec (no remote is needed), no plotting or database library."""
    code = ("import sys\nfrom cairn.cli.main import cli\n"
            "try:\n    cli(['metrics', 'diff', 'model-v1', 'model-v2'], standalone_mode=False)\n"
            "finally:\n    print(sorted(m for m in ('rich', 'fsspec', 'matplotlib', 'sqlalchemy')"
            " if m in sys.modules), file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=versions.root, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert "accuracy" in proc.stdout
    assert proc.stderr.strip() == "[]"


def test_a_dvc_repository_without_cairn_init(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """DVC's files, unchanged, in a plain git repository: what git holds compares."""
    from tests.conftest import git

    root = tmp_path / "dvc-project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    plain = CliRepo(root)
    plain.write("dvc.yaml", PIPELINE)
    release(plain, "model-v1", 0.01, 0.9, 0.85)
    release(plain, "model-v2", 0.02, 0.94, 0.91)
    monkeypatch.chdir(root)
    diffed = json.loads(plain.cairn("metrics", "diff", "model-v1", "model-v2", "--json").stdout)
    assert diffed["metrics.json"]["accuracy"] == {"old": 0.9, "new": 0.94, "diff": 0.04}


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


def test_plots_diff_to_a_path_it_cannot_write_is_one_line(repo: CliRepo) -> None:
    repo.write("cairn.yaml", "stages:\n  a:\n    cmd: echo\n"
                             "    plots: [{loss.csv: {cache: false}}]\n")
    repo.write("loss.csv", "step,loss\n0,1\n1,0.5\n")
    blocker = repo.write("blocker", "a file, not a directory\n")
    result = repo.cairn("plots", "diff", "-o", str(blocker / "plots.html"), ok=False)
    assert result.exit_code == 2, result.stderr  # bad input: the -o path
    assert result.stderr.count("\n") == 1
    assert "cannot write" in result.stderr and "-o" in result.stderr
