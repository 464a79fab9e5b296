"""end_run: the last metrics and the end status, written together."""

from __future__ import annotations

import pytest

import cairn
from cairn.errors import ConflictError
from cairn.tracking.backend import backend


def test_end_run_writes_waiting_metrics_and_the_end(tracking: str) -> None:
    with cairn.start_run() as run:
        cairn.log_metrics({"a": 1.0, "b": 2.0}, step=4)
    got = backend().store.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.info.end_time
    assert got.data.metrics == {"a": 1.0, "b": 2.0}
    assert backend().buffer.pending() == 0


def test_the_end_is_recorded_even_when_the_last_metrics_are_refused(tracking: str) -> None:
    run = cairn.start_run()
    cairn.log_metric("loss", 0.1)
    backend().store.delete_run(run.info.run_id)
    with pytest.raises(ConflictError, match="deleted"):
        cairn.end_run("FAILED")
    got = backend().store.get_run(run.info.run_id)
    assert got.info.status == "FAILED" and got.info.end_time
    assert cairn.active_run() is None
