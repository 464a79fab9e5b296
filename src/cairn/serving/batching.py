"""Concurrent requests coalesced into one predict call, and the results split back.

Requests queue up; one task takes the first, adds those already waiting (and those
arriving within `max_wait_s`, 0 by default) until the batch holds `batch_size` rows,
and predicts it on the model's own thread, so the event loop keeps reading requests
meanwhile: under load the next batch forms while this one runs, and a lone client waits
for nobody. Requests of one shape (`Inputs.key`) share one call. When the combined call
fails, or its output is not one row per input row, each request of it is predicted
alone, so each gets its own answer or its own error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cairn.serving.protocol import Inputs, combine, model_input, split

Predict = Callable[[Any], Any]


@dataclass
class _Job:
    inputs: Inputs
    done: asyncio.Future[Any]


class Batcher:
    def __init__(self, predict: Predict, batch_size: int, max_wait_s: float = 0.0) -> None:
        self.predict_fn, self.batch_size, self.max_wait_s = predict, batch_size, max_wait_s
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._held: _Job | None = None  # taken from the queue, but did not fit the last batch
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="cairn-predict")
        self._task: asyncio.Task[None] | None = None
        self.calls = 0  # predict calls made (GET /metadata shows them: batching at work)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._thread.shutdown(wait=False, cancel_futures=True)

    async def predict(self, inputs: Inputs) -> Any:
        """The predictions for one request's `inputs` (its error raised here)."""
        job = _Job(inputs, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        return await job.done

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            try:
                outcomes = await loop.run_in_executor(self._thread, self._predict_batch,
                                                      [job.inputs for job in batch])
            except Exception as e:  # never leave a request waiting forever
                outcomes = [(False, e)] * len(batch)
            for job, (ok, value) in zip(batch, outcomes, strict=True):
                if job.done.done():  # the client went away
                    continue
                if ok:
                    job.done.set_result(value)
                else:
                    job.done.set_exception(value)

    async def _gather(self) -> list[_Job]:
        first, self._held = self._held or await self._queue.get(), None
        batch, rows = [first], first.inputs.rows or self.batch_size
        deadline = asyncio.get_running_loop().time() + self.max_wait_s
        while rows < self.batch_size:
            job = self._queue.get_nowait() if not self._queue.empty() else None
            if job is None:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            size = job.inputs.rows
            if size is None or rows + size > self.batch_size:
                self._held = job  # the first of the next batch
                break
            batch.append(job)
            rows += size
        return batch

    def _predict_batch(self, batch: list[Inputs]) -> list[tuple[bool, Any]]:
        """On the model's thread: (True, predictions) or (False, error) per request."""
        outcomes: list[tuple[bool, Any] | None] = [None] * len(batch)
        groups: dict[Any, list[int]] = {}
        for n, inputs in enumerate(batch):
            groups.setdefault(inputs.key if inputs.key is not None else ("alone", n),
                              []).append(n)
        for members in groups.values():
            if len(members) > 1:
                parts = self._together([batch[n] for n in members])
                if parts is not None:
                    for n, part in zip(members, parts, strict=True):
                        outcomes[n] = (True, part)
                    continue
            for n in members:
                outcomes[n] = self._alone(batch[n])
        return [o for o in outcomes if o is not None]

    def _together(self, group: list[Inputs]) -> list[Any] | None:
        try:
            self.calls += 1
            predictions = self.predict_fn(model_input(combine(group)))
            return split(predictions, [i.rows or 0 for i in group])
        except Exception:  # someone's input is bad, or the output odd: each alone
            return None

    def _alone(self, inputs: Inputs) -> tuple[bool, Any]:
        try:
            self.calls += 1
            return True, self.predict_fn(model_input(inputs))
        except Exception as e:  # handed to that request, which answers it (app.py)
            return False, e
