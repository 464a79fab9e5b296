"""SqlStore.finish_run: a run's last metrics and its end in one transaction."""

from __future__ import annotations

from typing import cast

import pytest

from cairn.errors import ConflictError, NotFoundError
from cairn.store.base import MetadataStore
from cairn.store.entities import Metric
from cairn.store.sql.store import SqlStore


def test_finish_run_writes_the_last_metrics_and_the_end(store: MetadataStore) -> None:
    run_id = store.create_run("0", "ana", 1000, [], None).info.run_id
    finish = cast(SqlStore, store).finish_run
    finish(run_id, "FINISHED", 2000, [Metric("loss", 0.5, 1500, 3)])
    run = store.get_run(run_id)
    assert (run.info.status, run.info.end_time) == ("FINISHED", 2000)
    assert run.data.metrics == {"loss": 0.5}
    assert [m.step for m in store.get_metric_history(run_id, "loss")] == [3]


def test_finish_run_refuses_unknown_and_deleted_runs_whole(store: MetadataStore) -> None:
    finish = cast(SqlStore, store).finish_run
    with pytest.raises(NotFoundError, match="does not exist"):
        finish("nope", "FINISHED", 2000)
    run_id = store.create_run("0", "ana", 1000, [], None).info.run_id
    store.delete_run(run_id)
    with pytest.raises(ConflictError, match="deleted"):
        finish(run_id, "FAILED", 2000, [Metric("loss", 0.5, 1500, 0)])
    assert store.get_run(run_id).info.status == "RUNNING"  # nothing of it was written
    assert store.get_metric_history(run_id, "loss") == []
