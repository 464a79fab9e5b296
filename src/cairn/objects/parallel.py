"""Running one function over many items on a bounded number of threads."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # imported when threads are used: `cairn status` never needs them
    from concurrent.futures import Future

T = TypeVar("T")
R = TypeVar("R")


def run_parallel(fn: Callable[[T], R], items: Iterable[T], jobs: int,
                 per_item: tuple[type[BaseException], ...] = ()
                 ) -> Iterator[tuple[T, R | BaseException]]:
    """Apply `fn` on `jobs` threads; yield (item, result) as each finishes.

    Exceptions of the `per_item` types are yielded in place of a result; any other stops
    the run: queued work is cancelled and the exception raised. At most 2 * jobs items are
    in flight, so millions of objects do not mean millions of futures.
    """
    if jobs <= 1:  # in this thread: no hand-off per item
        for item in items:
            try:
                yield item, fn(item)
            except per_item as e:
                yield item, e
        return
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    todo = iter(items)
    pool = ThreadPoolExecutor(max_workers=jobs)
    pending: dict[Future[R], T] = {}
    try:
        for item in islice(todo, 2 * jobs):
            pending[pool.submit(fn, item)] = item
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                item = pending.pop(future)
                for following in islice(todo, 1):
                    pending[pool.submit(fn, following)] = following
                try:
                    yield item, future.result()
                except per_item as e:
                    yield item, e
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
