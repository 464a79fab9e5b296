"""metrics: the declared metrics files of revisions, from git or from the cache."""

from __future__ import annotations

import pytest

from cairn.commands.pipeline import open_revisions
from cairn.errors import FormatError
from cairn.objects.odb import ObjectDB
from cairn.pipeline.compare import ABSENT
from cairn.pipeline.metrics import metrics_at, metrics_diff, metrics_show, parse_metrics
from cairn.project.context import ProjectContext
from tests.conftest import CliRepo
from tests.unit.pipeline.test_compare import commit

PIPELINE = """\
stages:
  train:
    cmd: python train.py
    outs: [model.pkl]
    metrics:
    - metrics.json: {cache: false}
    - scores.csv: {cache: false}
  evaluate:
    cmd: python evaluate.py
    metrics: [eval/summary.yaml]
"""


def lock_for(data: bytes, repo: CliRepo) -> str:
    """Store `data` in the cache; a cairn.lock recording it as eval/summary.yaml."""
    oid = ObjectDB.local(ProjectContext.find(repo.root).cache_dir).add_bytes(data)
    return (f"schema: cairn-lock/1\nstages:\n  evaluate:\n    cmd: python evaluate.py\n"
            f"    outs:\n    - path: eval/summary.yaml\n      digest: {oid}\n"
            f"      size: {len(data)}\n")


@pytest.fixture
def tagged(repo: CliRepo) -> CliRepo:
    repo.write("cairn.yaml", PIPELINE)
    repo.write(".gitignore", "/eval/summary.yaml\n")
    for tag, acc, f1, auc in (("v1", 0.9, 0.85, 0.7), ("v2", 0.94, 0.91, 0.75)):
        repo.write("metrics.json", f'{{"accuracy": {acc}, "train": {{"f1": {f1}}}}}')
        repo.write("scores.csv", f"epoch,auc\n1,0.5\n2,{auc}\n")
        repo.write("cairn.lock", lock_for(f"loss: {1 - acc:.2f}\n".encode(), repo))
        commit(repo, tag, tag)
    return repo


@pytest.mark.parametrize(("name", "data", "expected"), [
    ("m.json", b'{"a": {"b": 1, "c": [1, 2]}, "d": "x"}', {"a.b": 1, "a.c": [1, 2], "d": "x"}),
    ("m.yaml", b"a:\n  b: 0.5\n", {"a.b": 0.5}),
    ("m.toml", b"[a]\nb = 2\n", {"a.b": 2}),
    ("m.csv", b"epoch,loss,name\n1,0.9,x\n2,0.5,y\n", {"epoch": 2, "loss": 0.5, "name": "y"}),
    ("m.tsv", b"auc\tf1\n0.7\t0.6\n", {"auc": 0.7, "f1": 0.6}),
])
def test_metrics_files_of_every_format_flatten_to_dotted_keys(
        name: str, data: bytes, expected: dict[str, object]) -> None:
    assert parse_metrics(name, data) == expected


def test_a_table_needs_a_row_of_values() -> None:
    with pytest.raises(FormatError, match="m.csv: expected a header row"):
        parse_metrics("m.csv", b"epoch,loss\n")


@pytest.mark.parametrize(("name", "data"), [("m.json", b"[0.9, 0.1]"), ("m.yaml", b"- 0.9\n")])
def test_a_metrics_file_that_is_not_a_mapping_is_called_a_metrics_file(name: str,
                                                                       data: bytes) -> None:
    with pytest.raises(FormatError, match=f"^{name}:1: a metrics file must hold a mapping"):
        parse_metrics(name, data)


def test_metrics_of_a_tag_come_from_git_and_the_cache(tagged: CliRepo) -> None:
    with open_revisions() as revs:
        found = metrics_at(revs, revs.snapshot("v1"))
    assert found.errors == {}
    assert found.metrics == {"metrics.json": {"accuracy": 0.9, "train.f1": 0.85},
                             "scores.csv": {"epoch": 2, "auc": 0.7},
                             "eval/summary.yaml": {"loss": 0.1}}


def test_diff_between_two_tags(tagged: CliRepo) -> None:
    with open_revisions() as revs:
        result = metrics_diff(revs, "v1", "v2")
    got = {(c.path, c.key): (c.old, c.new, c.delta) for c in result.changes}
    assert got.keys() == {("metrics.json", "accuracy"), ("metrics.json", "train.f1"),
                          ("scores.csv", "auc"), ("eval/summary.yaml", "loss")}
    assert got["metrics.json", "accuracy"] == (0.9, 0.94, pytest.approx(0.04))
    assert got["eval/summary.yaml", "loss"][2] == pytest.approx(-0.04)


def test_a_metric_new_in_the_workspace_has_no_old_value(tagged: CliRepo) -> None:
    tagged.write("metrics.json", '{"accuracy": 0.94, "train": {"f1": 0.91}, "recall": 0.8}')
    with open_revisions() as revs:
        changes = metrics_diff(revs).changes  # HEAD (v2) vs the workspace
    assert [(c.key, c.old, c.new) for c in changes] == [("recall", ABSENT, 0.8)]


def test_a_cached_metric_missing_from_the_cache_is_reported_not_fatal(tagged: CliRepo) -> None:
    cache = ObjectDB.local(ProjectContext.find(tagged.root).cache_dir)
    cache.remove(list(cache.list_oids()))
    with open_revisions() as revs:
        found = metrics_at(revs, revs.snapshot("v1"))
    assert "eval/summary.yaml" not in found.metrics
    assert "not in the cache" in found.errors["eval/summary.yaml"]
    assert "cairn fetch --rev v1" in found.errors["eval/summary.yaml"]
    assert found.metrics["metrics.json"]["accuracy"] == 0.9


def test_show_with_all_tags_lists_the_workspace_then_each_tag(tagged: CliRepo) -> None:
    with open_revisions() as revs:
        shown = metrics_show(revs, all_tags=True)
    assert [r.label for r in shown] == ["workspace", "v1", "v2"]
    assert shown[1].metrics["metrics.json"]["accuracy"] == 0.9


def test_a_malformed_metrics_file_is_named_with_its_revision(tagged: CliRepo) -> None:
    tagged.write("metrics.json", "{not json")
    commit(tagged, "broken", "bad")
    with open_revisions() as revs:
        found = metrics_at(revs, revs.snapshot("bad"))
    assert found.errors["metrics.json"].startswith("metrics.json:1: invalid JSON")
    assert "(as of bad)" in found.errors["metrics.json"]
    assert found.metrics["scores.csv"]["auc"] == 0.75


def test_a_repository_without_a_pipeline_has_no_metrics(repo: CliRepo) -> None:
    repo.write("metrics.json", '{"a": 1}')
    commit(repo, "one")
    with open_revisions() as revs:
        assert metrics_diff(revs).changes == []
