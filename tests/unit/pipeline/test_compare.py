"""compare: revisions read from git objects, params at a revision, and diffs of values."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.commands.pipeline import open_revisions
from cairn.errors import FormatError, UserError
from cairn.pipeline.compare import (
    ABSENT,
    Change,
    diff,
    flatten,
    group,
    params_at,
    params_diff,
)
from tests.conftest import CliRepo, commit, git

PIPELINE = """\
stages:
  train:
    cmd: python train.py
    params:
    - train.lr
    - train.epochs
    - config.json:
      - model.depth
    outs: [model.pkl]
"""


@pytest.fixture
def tagged(repo: CliRepo) -> CliRepo:
    """Two tagged commits whose params differ, and a workspace that differs again."""
    repo.write("cairn.yaml", PIPELINE)
    repo.write("params.yaml", "train:\n  lr: 0.01\n  epochs: 50\nseed: 1\n")
    repo.write("config.json", '{"model": {"depth": 3, "width": 8}}')
    commit(repo, "one", "v1")
    repo.write("params.yaml", "train:\n  lr: 0.02\n  epochs: 50\nseed: 1\n")
    repo.write("config.json", '{"model": {"depth": 4, "width": 9}}')
    commit(repo, "two", "v2")
    repo.write("params.yaml", "train:\n  lr: 0.03\n  epochs: 60\nseed: 1\n")
    return repo


def test_flatten_joins_nested_keys_with_dots() -> None:
    assert flatten({"train": {"lr": 0.1, "opt": {"name": "adam"}}, "tags": [1, 2], "e": {}}) \
        == {"train.lr": 0.1, "train.opt.name": "adam", "tags": [1, 2], "e": {}}


def test_diff_lists_changed_added_and_removed_keys() -> None:
    old = {"m.json": {"acc": 0.9, "loss": 0.3, "gone": 1}}
    new = {"m.json": {"acc": 0.95, "loss": 0.3, "new": True}, "other.json": {"x": 1}}
    changes = diff(old, new)
    assert [(c.path, c.key) for c in changes] == [
        ("m.json", "acc"), ("m.json", "gone"), ("m.json", "new"), ("other.json", "x")]
    assert changes[0].delta == pytest.approx(0.05)
    assert changes[1].new is ABSENT and changes[1].delta is None
    assert [c.key for c in diff(old, new, all_keys=True)] == ["acc", "loss", "gone", "new", "x"]


def test_a_null_value_differs_from_an_absent_one() -> None:
    assert Change("p", "k", None, ABSENT).changed
    assert not Change("p", "k", None, None).changed


def test_booleans_are_not_numbers_for_deltas() -> None:
    assert Change("p", "k", True, False).delta is None
    assert Change("p", "k", 1, 3).delta == 2


def test_group_gives_dvcs_json_shape_with_rounding() -> None:
    changes = [Change("m.json", "acc", 0.123456789, 0.2), Change("m.json", "x", ABSENT, "a")]
    assert group(changes, precision=3) == {"m.json": {
        "acc": {"old": 0.123, "new": 0.2, "diff": 0.077},
        "x": {"old": None, "new": "a"}}}


def test_params_at_reads_each_revision_from_git(tagged: CliRepo) -> None:
    with open_revisions() as revs:
        v1 = params_at(revs, revs.snapshot("v1"))
        work = params_at(revs, revs.snapshot(None))
    # all of params.yaml, and only the keys stages name from other files
    assert v1 == {"params.yaml": {"train.lr": 0.01, "train.epochs": 50, "seed": 1},
                  "config.json": {"model.depth": 3}}
    assert work["params.yaml"]["train.lr"] == 0.03


def test_params_diff_between_tags_and_against_the_workspace(tagged: CliRepo) -> None:
    with open_revisions() as revs:
        old, new, changes = params_diff(revs, "v1", "v2")
        assert (old.label, new.label) == ("v1", "v2")
        assert {(c.path, c.key, c.old, c.new) for c in changes} == {
            ("params.yaml", "train.lr", 0.01, 0.02), ("config.json", "model.depth", 3, 4)}
        old, new, changes = params_diff(revs)  # HEAD vs the workspace
        assert (old.label, new.label) == ("HEAD", "workspace")
        assert {c.key for c in changes} == {"train.lr", "train.epochs"}


def test_reading_a_revision_leaves_the_workspace_alone(tagged: CliRepo) -> None:
    before = (tagged.root / "params.yaml").read_bytes()
    with open_revisions() as revs:
        params_diff(revs, "v1", "v2")
    assert (tagged.root / "params.yaml").read_bytes() == before
    assert tagged.git("status", "--porcelain") == " M params.yaml\n"


def test_an_unknown_revision_is_one_clear_error(tagged: CliRepo) -> None:
    with open_revisions() as revs, pytest.raises(UserError, match="'nope' is not a git revision"):
        params_diff(revs, "nope")


def test_a_repository_without_commits_compares_against_nothing(repo: CliRepo) -> None:
    repo.write("params.yaml", "lr: 0.1\n")
    with open_revisions() as revs:
        _, _, changes = params_diff(revs)
    assert [(c.key, c.old, c.new) for c in changes] == [("lr", ABSENT, 0.1)]


def test_a_malformed_params_file_at_a_revision_names_it(tagged: CliRepo) -> None:
    tagged.write("params.yaml", "train: [unclosed\n")
    commit(tagged, "broken", "bad")
    expected = r"params.yaml:2: invalid YAML.*\(as of bad;"
    with open_revisions() as revs, pytest.raises(FormatError, match=expected):
        params_diff(revs, "v1", "bad")


def test_a_project_in_a_subdirectory_of_the_git_repository(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    top = tmp_path / "mono"
    (top / "ml").mkdir(parents=True)
    git(top, "init", "-q", "-b", "main")
    monkeypatch.chdir(top / "ml")
    project = CliRepo(top / "ml")
    project.cairn("init", "--no-hooks")
    project.write("params.yaml", "lr: 0.1\n")
    (top / "params.yaml").write_text("lr: 99\n")  # the git root's: not the project's
    commit(project, "one", "v1")
    project.write("params.yaml", "lr: 0.2\n")
    with open_revisions() as revs:
        _, _, changes = params_diff(revs, "v1")
    assert [(c.path, c.old, c.new) for c in changes] == [("params.yaml", 0.1, 0.2)]
