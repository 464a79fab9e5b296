"""Filter strings: the parser alone, then searches on both stores."""

from __future__ import annotations

import pytest

from cairn.errors import UserError
from cairn.store.base import MetadataStore
from cairn.store.entities import Metric, Param, RunTag, StageChange
from cairn.store.search import (
    BoolOp,
    Comparison,
    decode_page_token,
    encode_page_token,
    parse_filter,
    parse_order_by,
)

# -- the parser -----------------------------------------------------------------------


def test_parses_mlflow_syntax_and_more() -> None:
    tree = parse_filter("metrics.f1 >= 0.9 and params.lr = '0.01' AND (tags.`team name` "
                        "LIKE 'ri%' OR attributes.status IN ('FINISHED', \"KILLED\"))")
    assert tree == BoolOp("AND", (
        Comparison("metric", "f1", ">=", 0.9),
        Comparison("param", "lr", "=", "0.01"),
        BoolOp("OR", (Comparison("tag", "team name", "LIKE", "ri%"),
                      Comparison("attribute", "status", "IN", ("FINISHED", "KILLED")))),
    ))


@pytest.mark.parametrize(("text", "expected"), [
    ("metric.loss < -1e-3", Comparison("metric", "loss", "<", -0.001)),
    ("run.run_name = 'it''s'", Comparison("attribute", "run_name", "=", "it's")),
    ("params.model.depth != '3'", Comparison("param", "model.depth", "!=", "3")),
    ("tags.\"a b\" ILIKE '%X%'", Comparison("tag", "a b", "ILIKE", "%X%")),
    ("version_number <> 2", Comparison("attribute", "version_number", "!=", 2.0)),
    ("alias NOT IN ('champion')", Comparison("attribute", "alias", "NOT IN", ("champion",))),
    ("  ", None),
])
def test_parses_single_comparisons(text: str, expected: object) -> None:
    assert parse_filter(text) == expected


def test_or_binds_looser_than_and() -> None:
    tree = parse_filter("a = '1' OR b = '2' AND c = '3'")
    assert isinstance(tree, BoolOp) and tree.op == "OR"
    assert isinstance(tree.items[1], BoolOp) and tree.items[1].op == "AND"


@pytest.mark.parametrize(("text", "message"), [
    ("metrics.f1 >> 0.9",
     "invalid filter \"metrics.f1 >> 0.9\": unexpected '>' at position 12; expected a value"),
    ("metrics.f1 > 'high'", "metrics.f1 needs a number, got 'high' at position 13"),
    ("metrics.f1 LIKE '1%'", "metrics.f1 compares with =, !=, <, <=, > or >=, not LIKE"),
    ("params.lr > '1'", "params.lr compares with =, !=, LIKE, ILIKE, IN or NOT IN, not >"),
    ("params.lr = 1", "params.lr needs a quoted string"),
    ("(metrics.a > 1", "unexpected end of filter at position 14; expected ')', AND or OR"),
    ("metrics.a > 1 metrics.b > 2", "unexpected 'metrics.b' at position 14; expected AND, OR"),
    ("foo.bar = 1", "unknown prefix 'foo.' at position 0; expected metrics., params., tags."),
    ("status = 'open", "unterminated string 'open at position 9"),
    ("status IN 'A'", "expected '(' and a list of values after IN"),
    ("status ! 'A'", "unexpected '!' at position 7; expected a comparator"),
    ("AND", "unexpected 'AND' at position 0; expected a column"),
    ("status NOT 'x'", "expected IN after NOT"),
])
def test_syntax_errors_name_the_position(text: str, message: str) -> None:
    with pytest.raises(UserError) as info:
        parse_filter(text)
    assert message in str(info.value)
    assert str(info.value).startswith(f'invalid filter "{text}": ')


def test_order_by() -> None:
    parsed = parse_order_by(["metrics.f1 DESC", "attributes.start_time asc", "name"])
    assert [(o.entity, o.key, o.ascending) for o in parsed] == [
        ("metric", "f1", False), ("attribute", "start_time", True), ("attribute", "name", True)]
    with pytest.raises(UserError, match='invalid order_by "f1 DOWN": unexpected \'DOWN\''):
        parse_order_by(["f1 DOWN"])


def test_page_tokens_round_trip_and_reject_garbage() -> None:
    assert decode_page_token(encode_page_token(200)) == 200
    assert decode_page_token(None) == 0
    for bad in ("not-base64!", encode_page_token(-1), "eyJ4IjogMX0="):
        with pytest.raises(UserError, match="invalid page token"):
            decode_page_token(bad)


# -- searching runs -------------------------------------------------------------------

@pytest.fixture
def runs(store: MetadataStore) -> dict[str, str]:
    """Five runs: name -> run id, with f1, lr and a team tag (one without f1)."""
    ids = {}
    for i, (f1, lr, team, status) in enumerate([
            (0.91, "0.1", "risk", "FINISHED"), (0.85, "0.01", "risk", "FINISHED"),
            (0.95, "0.1", "Growth", "FAILED"), (0.70, "0.001", "growth", "FINISHED"),
            (None, "0.1", "risk", "RUNNING")]):
        name = f"run{i}"
        run_id = store.create_run("0", "ana", 1000 + i, run_name=name).info.run_id
        store.log_batch(run_id, metrics=[] if f1 is None else [Metric("f1", f1, 1, 0)],
                        params=[Param("lr", lr)], tags=[RunTag("team", team)])
        if status != "RUNNING":
            store.update_run_info(run_id, status=status, end_time=2000)
        ids[name] = run_id
    return ids


def names(found: list[object]) -> list[str]:
    return [r.info.run_name for r in found]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("text", "expected"), [
    ("metrics.f1 > 0.9", {"run0", "run2"}),
    ("metrics.f1 >= 0.85 AND params.lr = '0.01'", {"run1"}),
    ("params.lr = '0.001' OR metrics.f1 > 0.94", {"run2", "run3"}),
    ("(params.lr = '0.1' OR params.lr = '0.01') AND tags.team = 'risk'",
     {"run0", "run1", "run4"}),
    ("tags.team LIKE 'g%'", {"run3"}),  # LIKE is case-sensitive on both databases
    ("tags.team ILIKE 'g%'", {"run2", "run3"}),
    ("attributes.status IN ('FAILED', 'RUNNING')", {"run2", "run4"}),
    ("status NOT IN ('FINISHED')", {"run2", "run4"}),
    ("run_name = 'run3'", {"run3"}),
    ("attributes.start_time >= 1003", {"run3", "run4"}),
    ("params.lr != '0.1'", {"run1", "run3"}),
    ("metrics.missing > 0", set()),
])
def test_search_runs_filters(store: MetadataStore, runs: dict[str, str], text: str,
                             expected: set[str]) -> None:
    assert set(names(store.search_runs(["0"], text))) == expected


def test_search_runs_orders_by_metric_with_missing_values_last(
        store: MetadataStore, runs: dict[str, str]) -> None:
    assert names(store.search_runs(["0"], order_by=["metrics.f1 DESC"])) == [
        "run2", "run0", "run1", "run3", "run4"]
    assert names(store.search_runs(["0"], order_by=["metrics.f1"])) == [
        "run3", "run1", "run0", "run2", "run4"]
    assert names(store.search_runs(["0"])) == ["run4", "run3", "run2", "run1", "run0"]
    assert names(store.search_runs(["0"], order_by=["params.lr ASC", "run_name DESC"])) == [
        "run3", "run1", "run4", "run2", "run0"]


def test_search_runs_pages(store: MetadataStore, runs: dict[str, str]) -> None:
    seen, token, pages = [], None, 0
    while True:
        page = store.search_runs(["0"], max_results=2, order_by=["run_name"], page_token=token)
        seen += names(page)
        pages += 1
        token = page.token
        if token is None:
            break
    assert (seen, pages) == (["run0", "run1", "run2", "run3", "run4"], 3)
    for bad in (0, -1, 50001):
        with pytest.raises(UserError, match="max_results must be an integer from 1 to 50000"):
            store.search_runs(["0"], max_results=bad)


def test_search_runs_rejects_unknown_attributes(store: MetadataStore) -> None:
    with pytest.raises(UserError, match="unknown attribute 'colour' for runs; expected one of"):
        store.search_runs(["0"], "colour = 'red'")
    with pytest.raises(UserError, match="start_time needs a number"):
        store.search_runs(["0"], "start_time > 'yesterday'")
    with pytest.raises(UserError, match="invalid order_by \"attributes.colour\""):
        store.search_runs(["0"], order_by=["attributes.colour"])


# -- searching the registry -----------------------------------------------------------

@pytest.fixture
def versions(store: MetadataStore) -> None:
    run_id = store.create_run("0", "ana", 1).info.run_id
    for name in ("fraud", "churn"):
        for i in range(3):
            store.create_model_version(name, f"/m/{name}/{i}", f"d-{name}-{i}",
                                       run_id=run_id if i == 0 else None)
    store.apply_stage_change(StageChange("fraud", 2, "Production"))
    store.apply_stage_change(StageChange("churn", 3, "Staging"))
    store.set_registered_model_alias("fraud", "champion", 2)
    store.set_model_version_tag("churn", 1, "validated", "yes")
    store.set_registered_model_tag("churn", "team", "growth")


def pairs(found: list[object]) -> list[tuple[str, int]]:
    return [(v.name, v.version) for v in found]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("text", "expected"), [
    ("name = 'fraud'", [("fraud", 3), ("fraud", 2), ("fraud", 1)]),
    ("current_stage = 'production'", [("fraud", 2)]),
    ("current_stage IN ('Production', 'Staging')", [("churn", 3), ("fraud", 2)]),
    ("alias = 'champion'", [("fraud", 2)]),
    ("tags.validated = 'yes' OR (name = 'fraud' AND version_number >= 3)",
     [("churn", 1), ("fraud", 3)]),
    ("source LIKE '/m/churn/%' AND version < 2", [("churn", 1)]),
    ("name ILIKE 'FR%' AND version = '1'", [("fraud", 1)]),
])
def test_search_model_versions(store: MetadataStore, versions: None, text: str,
                               expected: list[tuple[str, int]]) -> None:
    assert pairs(store.search_model_versions(text)) == expected


def test_search_model_versions_by_run_and_order(store: MetadataStore, versions: None) -> None:
    run_id = store.get_model_version("fraud", 1).run_id
    assert pairs(store.search_model_versions(f"run_id = '{run_id}'")) == [("churn", 1),
                                                                           ("fraud", 1)]
    found = store.search_model_versions(order_by=["version_number ASC", "name DESC"],
                                        max_results=3)
    assert pairs(found) == [("fraud", 1), ("churn", 1), ("fraud", 2)]
    assert found.token is not None
    with pytest.raises(UserError, match="model versions have no metrics"):
        store.search_model_versions("metrics.f1 > 1")


def test_search_registered_models(store: MetadataStore, versions: None) -> None:
    assert [m.name for m in store.search_registered_models()] == ["churn", "fraud"]
    assert [m.name for m in store.search_registered_models("tags.team = 'growth'")] == ["churn"]
    assert [m.name for m in store.search_registered_models("alias = 'champion'")] == ["fraud"]
    assert [m.name for m in store.search_registered_models(order_by=["name DESC"])] == [
        "fraud", "churn"]
    page = store.search_registered_models(max_results=1)
    assert ([m.name for m in page], page.token is not None) == (["churn"], True)
    rest = store.search_registered_models(max_results=1, page_token=page.token)
    assert ([m.name for m in rest], rest.token) == (["fraud"], None)
