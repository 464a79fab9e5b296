"""Adding a stage to a pipeline file's text: everything else in the file kept as it was."""

from __future__ import annotations

import pytest

from cairn.errors import FormatError, UserError
from cairn.pipeline.schema import load_pipeline_at
from cairn.pipeline.stage_add import StageSpec, with_stage

NEW = StageSpec("train", ["python train.py"], deps=["data"], outs=["model.pkl"],
                params=["train.lr,train.epochs", "conf.json:depth", "all.toml:"],
                metrics_no_cache=["metrics.json"]).definition()


def add(text: str, force: bool = False) -> str:
    return with_stage(text, "dvc.yaml", "train", NEW, force)


def stages_of(text: str) -> dict[str, object]:
    return {n: s for n, s in load_pipeline_at({"dvc.yaml": text.encode()}).stages.items()}


def test_new_file_written_as_dvc_writes_it() -> None:
    text = add("")
    assert text == (
        "stages:\n"
        "  train:\n"
        "    cmd: python train.py\n"
        "    deps:\n"
        "    - data\n"
        "    params:\n"
        "    - train.lr\n"
        "    - train.epochs\n"
        "    - conf.json:\n"
        "      - depth\n"
        "    - all.toml:\n"
        "    outs:\n"
        "    - model.pkl\n"
        "    metrics:\n"
        "    - metrics.json:\n"
        "        cache: false\n")
    assert list(stages_of(text)) == ["train"]


EXISTING = """\
# the team's pipeline
vars:
- lr: 0.1   # keep this comment

stages:
    prepare:   # four-space indent, kept
        cmd: python prepare.py ${lr}
        outs:
        - data

# plots below
plots:
- loss.csv
"""


def test_appended_at_the_end_of_stages_with_comments_and_other_sections_kept() -> None:
    text = add(EXISTING)
    assert text.startswith(EXISTING.split("# plots below")[0].rstrip("\n") + "\n    train:\n")
    assert text.endswith("\n# plots below\nplots:\n- loss.csv\n")
    assert "# keep this comment" in text and "# four-space indent, kept" in text
    assert list(stages_of(text)) == ["prepare", "train"]


def test_existing_stage_needs_force_and_force_replaces_it_in_place() -> None:
    text = add(EXISTING)
    with pytest.raises(UserError, match="^stage 'train' already exists in dvc.yaml; use --force"):
        add(text)
    other = StageSpec("train", ["python other.py"]).definition()
    replaced = with_stage(text, "dvc.yaml", "train", other, force=True)
    stages = stages_of(replaced)
    assert list(stages) == ["prepare", "train"]
    assert "python other.py" in replaced and "python train.py" not in replaced
    assert replaced.endswith("plots:\n- loss.csv\n")


def test_replacing_a_stage_in_the_middle_keeps_its_neighbours() -> None:
    text = "stages:\n  train:\n    cmd: old\n  eval:\n    cmd: e\n"
    replaced = with_stage(text, "dvc.yaml", "train", {"cmd": "new"}, force=True)
    assert replaced == "stages:\n  train:\n    cmd: new\n  eval:\n    cmd: e\n"


@pytest.mark.parametrize("text", ["stages:\n", "stages: {}\n", "stages: {}  # none yet\n",
                                  "vars: []\n", "stages:\n  a:\n    cmd: x"])
def test_empty_or_missing_stages_section(text: str) -> None:
    assert "train" in stages_of(add(text))


def test_inline_stages_and_bad_yaml_are_refused() -> None:
    with pytest.raises(UserError, match="written inline"):
        add("stages: {a: {cmd: x}}\n")
    with pytest.raises(FormatError, match="^dvc.yaml:3: invalid YAML: mapping values"):
        add("stages:\n  a: 1\n    b: 2\n")


@pytest.mark.parametrize(("spec", "message"), [
    (StageSpec("a/b", ["x"]), "stage name 'a/b' must not"),
    (StageSpec("a", []), "give the stage's command"),
    (StageSpec("a", ["x"], outs=["../outside"]), "climbs out of the workspace"),
])
def test_bad_specs(spec: StageSpec, message: str) -> None:
    with pytest.raises(UserError, match=message):
        spec.definition()


def test_command_words_are_quoted_only_when_needed() -> None:
    assert StageSpec("a", ["python", "t.py", "--name", "a b"]).definition()["cmd"] == \
        "python t.py --name 'a b'"
    assert StageSpec("a", ["python t.py && echo ok"]).definition()["cmd"] == \
        "python t.py && echo ok"
