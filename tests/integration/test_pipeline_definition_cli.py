"""`cairn stage add`, `cairn stage list` and `cairn dag` in real git + Cairn repositories."""

from __future__ import annotations

import json

import pytest

from cairn.pipeline.schema import load_pipeline
from tests.conftest import CliRepo
from tests.unit.pipeline.test_schema import SEED_DVC_YAML


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_seed_pipeline_rebuilt_with_stage_add_round_trips(repo: CliRepo) -> None:
    repo.cairn("stage", "add", "-n", "preprocess", "-d", "src/preprocess.py", "-d", "data/raw/",
               "-o", "data/processed/", "python", "src/preprocess.py")
    result = repo.cairn("stage", "add", "-n", "train", "-d", "src/train.py",
                        "-d", "data/processed/", "-p", "train.learning_rate,train.epochs",
                        "-o", "models/classifier.pkl", "-M", "metrics.json",
                        "python", "src/train.py", "--lr", "0.1")
    assert "Added stage 'train' to cairn.yaml" in result.output
    assert "git add cairn.yaml\n" in result.output  # no output directory exists yet
    built = load_pipeline(repo.root)
    (repo.root / "cairn.yaml").rename(repo.root / "elsewhere.yaml")
    repo.write("dvc.yaml", SEED_DVC_YAML)
    seed = load_pipeline(repo.root)
    for name in ("preprocess", "train"):
        ours, theirs = built.stages[name], seed.stages[name]
        assert (ours.deps, ours.params, ours.outs) == (theirs.deps, theirs.params, theirs.outs)
    assert built.stages["train"].cmd == ("python src/train.py --lr 0.1",)


def test_stage_add_keeps_cached_outputs_out_of_git(repo: CliRepo) -> None:
    (repo.root / "models").mkdir()
    result = repo.cairn("stage", "add", "-n", "train", "-o", "models/m.pkl", "-o", "top.bin",
                        "-M", "metrics.json", "-O", "kept.txt", "python", "train.py")
    assert "git add cairn.yaml models/.gitignore .gitignore" in result.output
    assert (repo.root / "models" / ".gitignore").read_text() == "/m.pkl\n"
    ignored = (repo.root / ".gitignore").read_text().splitlines()
    assert "/top.bin" in ignored
    assert "/metrics.json" not in ignored and "/kept.txt" not in ignored


def test_stage_add_appends_to_the_projects_dvc_yaml(repo: CliRepo) -> None:
    repo.write("dvc.yaml", "# ours\n" + SEED_DVC_YAML + "plots:\n- loss.csv\n")
    repo.cairn("stage", "add", "-n", "evaluate", "-d", "models/classifier.pkl",
               "-O", "eval/report.html", "python", "src/evaluate.py")
    assert not (repo.root / "cairn.yaml").exists()
    text = (repo.root / "dvc.yaml").read_text()
    assert text.startswith("# ours\n" + SEED_DVC_YAML)
    assert text.endswith("plots:\n- loss.csv\n")
    evaluate = load_pipeline(repo.root).stages["evaluate"]
    assert [(o.path, o.cache) for o in evaluate.outs] == [("eval/report.html", False)]


def test_stage_add_refusals_leave_the_file_alone(repo: CliRepo) -> None:
    repo.cairn("stage", "add", "-n", "train", "-o", "model.pkl", "python", "train.py")
    before = (repo.root / "cairn.yaml").read_bytes()
    for args, message in [
        (["-n", "train", "echo"], "stage 'train' already exists in cairn.yaml; use --force"),
        (["-n", "other", "-o", "model.pkl", "echo"],
         "output 'model.pkl' is produced by both stage 'train' and stage 'other'"),
        (["-n", "loop", "-d", "y", "-o", "x", "-d", "x", "echo"],
         "stage 'loop' depends on its own output (x)"),
        (["-n", "bad", "-o", "../x", "echo"], "path '../x' climbs out of the workspace"),
    ]:
        result = repo.cairn("stage", "add", *args, ok=False)
        assert result.exit_code == 2
        assert message in error_line(result.stderr)
        assert (repo.root / "cairn.yaml").read_bytes() == before
    repo.cairn("stage", "add", "-n", "train", "--force", "-o", "model.pkl", "python", "v2.py")
    assert load_pipeline(repo.root).stages["train"].cmd == ("python v2.py",)


def test_stage_add_in_a_subdirectory_writes_its_own_file(repo: CliRepo,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (repo.root / "sub").mkdir()
    monkeypatch.chdir(repo.root / "sub")
    repo.cairn("stage", "add", "-n", "fit", "-o", "out.txt", "echo", "hi")
    assert (repo.root / "sub" / "cairn.yaml").is_file()
    stage = load_pipeline(repo.root).stages["sub/cairn.yaml:fit"]
    assert (stage.wdir, stage.outs[0].path) == ("sub", "sub/out.txt")


def test_stage_list(repo: CliRepo) -> None:
    repo.write("dvc.yaml", SEED_DVC_YAML)
    assert repo.cairn("stage", "list").output.splitlines() == [
        "preprocess  Outputs data/processed",
        "train       Outputs models/classifier.pkl, metrics.json"]
    listed = json.loads(repo.cairn("stage", "list", "--json").output)
    assert [s["name"] for s in listed] == ["preprocess", "train"]


def test_dag_in_every_format(repo: CliRepo) -> None:
    repo.write("dvc.yaml", SEED_DVC_YAML)
    ascii_art = repo.cairn("dag").output
    assert ascii_art.index("| preprocess |") < ascii_art.index("| train |")
    assert "*" in ascii_art
    assert repo.cairn("dag", "--mermaid").output == (
        'flowchart TD\n\tnode1["preprocess"]\n\tnode2["train"]\n\tnode1-->node2\n')
    assert repo.cairn("dag", "--md").output.startswith("```mermaid\nflowchart TD\n")
    assert repo.cairn("dag", "--dot").output == (
        'strict digraph {\n"preprocess";\n"train";\n"preprocess" -> "train";\n}\n')
    assert "train" not in repo.cairn("dag", "--dot", "preprocess").output
    assert "preprocess" not in repo.cairn("dag", "--dot", "--downstream", "train").output


@pytest.mark.parametrize(("text", "message"), [
    ("stages:\n  train:\n    cmd: x\n    outz: [m]\n",
     "error: dvc.yaml:4: stage 'train': unknown key 'outz' (did you mean 'outs'?)"),
    ("stages:\n  train: [\n", "error: dvc.yaml:3: invalid YAML"),
    ("stages:\n  a:\n    cmd: x\n    deps: [b.txt]\n    outs: [a.txt]\n"
     "  b:\n    cmd: y\n    deps: [a.txt]\n    outs: [b.txt]\n",
     "error: the pipeline has a cycle: "),
])
def test_dag_of_a_bad_pipeline_is_one_error_line(repo: CliRepo, text: str, message: str) -> None:
    repo.write("dvc.yaml", text)
    result = repo.cairn("dag", ok=False)
    assert result.exit_code == 2
    assert error_line(result.stderr).startswith(message)


def test_dag_unknown_target_and_empty_pipeline(repo: CliRepo) -> None:
    assert "the pipeline has no stages" in repo.cairn("dag").stderr
    repo.write("dvc.yaml", SEED_DVC_YAML)
    result = repo.cairn("dag", "trian", ok=False)
    assert result.exit_code == 1
    assert error_line(result.stderr) == (
        "error: no stage 'trian' in the pipeline; did you mean 'train'?")
