"""MLflow's search_runs, ViewType and the nested-run tag, so ported sweep and cleanup code
runs."""

from __future__ import annotations

import pytest

import cairn
from cairn.entities import ViewType
from cairn.errors import UserError


def _runs(experiment: str, f1s: list[float]) -> list[str]:
    cairn.set_experiment(experiment)
    ids = []
    for i, f1 in enumerate(f1s):
        with cairn.start_run() as run:
            cairn.log_params({"lr": 0.01 * (i + 1)})
            cairn.log_metrics({"f1": f1})
        ids.append(run.info.run_id)
    return ids


def test_a_frame_of_the_current_experiments_runs_filtered_and_ordered(tracking: str) -> None:
    _runs("other", [0.99])
    ids = _runs("sweep", [0.7, 0.9, 0.8])

    frame = cairn.search_runs(filter_string="metrics.f1 > 0.75", order_by=["metrics.f1 DESC"])

    assert list(frame["run_id"]) == [ids[1], ids[2]]
    assert list(frame["metrics.f1"]) == [0.9, 0.8]
    assert list(frame["params.lr"]) == ["0.02", "0.03"]
    assert {"status", "start_time", "end_time", "artifact_uri"} <= set(frame.columns)


def test_view_types_names_and_list_output(tracking: str) -> None:
    kept, gone = _runs("sweep", [0.5, 0.6])
    client = cairn.Client()
    client.delete_run(gone)
    experiment = client.get_experiment_by_name("sweep")
    assert experiment is not None

    deleted = client.search_runs([experiment.experiment_id],
                                 run_view_type=ViewType.DELETED_ONLY)
    every = cairn.search_runs(experiment_names=["sweep"], run_view_type=ViewType.ALL,
                              output_format="list")

    assert [r.info.run_id for r in deleted] == [gone]
    assert {r.info.run_id for r in every} == {kept, gone}
    assert cairn.search_runs(search_all_experiments=True).shape[0] == 1


def test_bad_arguments_are_one_clear_error(tracking: str) -> None:
    with pytest.raises(UserError, match="unknown view type 7"):
        cairn.search_runs(run_view_type=7)
    with pytest.raises(UserError, match="no experiment named 'nope'"):
        cairn.search_runs(experiment_names=["nope"])
    with pytest.raises(UserError, match="output_format must be"):
        cairn.search_runs(output_format="csv")


def test_child_runs_are_found_by_mlflows_parent_tag(tracking: str) -> None:
    """Sweep scripts find a parent's children with tags.mlflow.parentRunId; that filter
    must not silently return nothing."""
    cairn.set_experiment("sweep")
    with cairn.start_run() as parent:
        for lr in (0.1, 0.01):
            with cairn.start_run(nested=True):
                cairn.log_param("lr", lr)
    client = cairn.Client()
    experiment = client.get_experiment_by_name("sweep")
    assert experiment is not None
    children = client.search_runs([experiment.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(r.data.params["lr"] for r in children) == ["0.01", "0.1"]
    assert all(r.data.tags["cairn.parentRunId"] == parent.info.run_id for r in children)
