"""Metrics wait in memory and reach the store in batches: one transaction per flush.

`log_metric` appends a row and returns. A background thread writes what has gathered
every `interval` seconds, or as soon as `max_rows` rows wait; `flush()` (and `end_run`,
and interpreter exit) writes everything before returning. So a crash loses at most the
last `interval` seconds of metrics, and nothing that a returned `flush()` covered.

A background write that fails keeps its rows and the error; the next foreground call
retries them and, if the retry fails too, drops them and raises the error there.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Sequence

from cairn.store.base import MetadataStore
from cairn.store.entities import Metric

BACKLOG_FACTOR = 4  # beyond this many full batches, the logger writes them itself


class MetricBuffer:
    def __init__(self, store: MetadataStore, interval: float, max_rows: int) -> None:
        self.store = store
        self.interval = interval
        self.max_rows = max_rows
        self._rows: list[tuple[str, Metric]] = []
        self._lock = threading.Lock()  # guards _rows and _error
        self._write_lock = threading.Lock()  # one writer at a time keeps rows in order
        self._wake = threading.Event()
        self._closed = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def add(self, run_id: str, metrics: Sequence[Metric]) -> None:
        if self._error is not None:
            self.flush()  # raises if the store still refuses
        with self._lock:
            self._rows.extend((run_id, m) for m in metrics)
            waiting = len(self._rows)
        if self.interval == 0 or waiting >= self.max_rows * BACKLOG_FACTOR:
            self.flush()  # no buffering asked for, or the writer cannot keep up
            return
        if self._thread is None:
            self._start_thread()
        if waiting >= self.max_rows:
            self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._rows)

    def flush(self, last: tuple[str, Callable[[list[Metric]], None]] | None = None) -> None:
        """Write every waiting row now; raise if the store refuses them. With `last` =
        (run id, write), that run's rows (maybe none) go to `write` instead of the store,
        so a run's final metrics and its end can share one transaction."""
        self._write(foreground=True, last=last)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        try:
            self.flush()
        finally:
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join(timeout=5)

    def reset_after_fork(self) -> None:
        """In a forked child: the parent writes its own rows; start clean."""
        self._rows = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        self._error = None

    # -- internals -------------------------------------------------------------------

    def _start_thread(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="cairn-metric-flush",
                                            daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            self._write(foreground=False)

    def _write(self, foreground: bool,
               last: tuple[str, Callable[[list[Metric]], None]] | None = None) -> None:
        with self._write_lock:
            with self._lock:
                rows, self._rows = self._rows, []
                if foreground:
                    self._error = None
            if not rows and last is None:
                return
            by_run: dict[str, list[Metric]] = defaultdict(list)
            for run_id, metric in rows:
                by_run[run_id].append(metric)
            if last is not None:
                by_run[last[0]] = by_run.pop(last[0], [])  # written after the others
            for run_id, metrics in by_run.items():
                try:
                    if last is not None and run_id == last[0]:
                        last[1](metrics)
                    else:
                        self.store.log_batch(run_id, metrics=metrics)
                except Exception as e:
                    if foreground:
                        self._requeue(by_run, after=run_id, error=None)
                        raise
                    self._requeue(by_run, after=None, error=e)
                    return
                by_run[run_id] = []

    def _requeue(self, by_run: dict[str, list[Metric]], after: str | None,
                 error: BaseException | None) -> None:
        """Put unwritten rows back in front. In the foreground the failed run's rows are
        dropped (the caller gets the error); in the background they wait for a retry."""
        keep: list[tuple[str, Metric]] = []
        for run_id, metrics in by_run.items():
            if run_id == after:
                continue
            keep.extend((run_id, m) for m in metrics)
        with self._lock:
            self._rows = keep + self._rows
            if error is not None:
                self._error = error
