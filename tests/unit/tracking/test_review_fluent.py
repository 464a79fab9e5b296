"""Review: MLflow code that walks nested runs, ported by changing the import."""

from __future__ import annotations

import cairn


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
