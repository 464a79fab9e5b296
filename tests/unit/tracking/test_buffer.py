"""Metrics are written in batches: few transactions, nothing lost on flush."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from cairn.errors import NotFoundError
from cairn.store.entities import Metric
from cairn.tracking.buffer import MetricBuffer


class RecordingStore:
    """Only what the buffer uses of a MetadataStore: log_batch, counted."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[Metric]]] = []
        self.fail_with: Exception | None = None
        self.lock = threading.Lock()

    def log_batch(self, run_id: str, metrics: Sequence[Metric] = (), **_: Any) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        with self.lock:
            self.batches.append((run_id, list(metrics)))

    def rows(self) -> int:
        with self.lock:
            return sum(len(m) for _, m in self.batches)


def metric(i: int) -> Metric:
    return Metric("loss", float(i), 1000 + i, i)


def test_ten_thousand_metrics_cost_a_handful_of_transactions() -> None:
    store = RecordingStore()
    buffer = MetricBuffer(store, interval=60, max_rows=1000)  # type: ignore[arg-type]
    for i in range(10_000):
        buffer.add("run", (metric(i),))
    buffer.flush()
    assert store.rows() == 10_000
    assert len(store.batches) <= 15
    written = [m.step for _, batch in store.batches for m in batch]
    assert written == list(range(10_000))  # in logging order
    buffer.close()


def test_the_background_thread_writes_within_the_interval() -> None:
    store = RecordingStore()
    buffer = MetricBuffer(store, interval=0.05, max_rows=1000)  # type: ignore[arg-type]
    buffer.add("run", (metric(1),))
    deadline = time.monotonic() + 5
    while store.rows() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.rows() == 1 and buffer.pending() == 0
    buffer.close()


def test_rows_from_several_runs_go_to_their_own_run() -> None:
    store = RecordingStore()
    buffer = MetricBuffer(store, interval=60, max_rows=1000)  # type: ignore[arg-type]
    buffer.add("a", (metric(1),))
    buffer.add("b", (metric(2), metric(3)))
    buffer.flush()
    assert sorted((run, len(rows)) for run, rows in store.batches) == [("a", 1), ("b", 2)]
    buffer.close()


def test_a_background_failure_is_retried_then_raised_in_the_foreground() -> None:
    store = RecordingStore()
    buffer = MetricBuffer(store, interval=0.02, max_rows=1000)  # type: ignore[arg-type]
    store.fail_with = NotFoundError("no run 'gone'")
    buffer.add("gone", (metric(1),))
    time.sleep(0.2)  # the background writer fails and keeps the rows
    assert buffer.pending() == 1
    with pytest.raises(NotFoundError, match="no run 'gone'"):
        buffer.flush()
    store.fail_with = None
    buffer.add("run", (metric(2),))
    buffer.flush()
    assert store.rows() == 1  # the failed run's row was dropped with its error
    buffer.close()


def test_interval_zero_writes_every_call() -> None:
    store = RecordingStore()
    buffer = MetricBuffer(store, interval=0, max_rows=1000)  # type: ignore[arg-type]
    buffer.add("run", (metric(1),))
    assert store.rows() == 1
    buffer.close()
