"""Functions run in separate processes by the store concurrency tests (spawn start method)."""

from __future__ import annotations

import time


def warm_up(_: int) -> None:
    """Import SQLAlchemy and the store once per worker, before any timed start."""
    import importlib

    importlib.import_module("cairn.store.sql.store")
    importlib.import_module("cairn.store.open")


def _wait_until(start_at: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))


def register_versions(uri: str, name: str, count: int, start_at: float) -> list[int]:
    from cairn.store.open import open_store

    store = open_store(uri)
    try:
        _wait_until(start_at)
        return [store.create_model_version(name, f"/m/{i}", f"d{i}", user_id="worker").version
                for i in range(count)]
    finally:
        store.close()


def promote(uri: str, name: str, version: int, start_at: float) -> str:
    from cairn.store.entities import StageChange
    from cairn.store.open import open_store

    store = open_store(uri)
    try:
        _wait_until(start_at)
        return store.apply_stage_change(StageChange(
            name, version, "Production", archive_others_to="Archived",
            user_id=f"worker-{version}")).version.current_stage
    finally:
        store.close()


def promote_and_report(uri: str, name: str, version: int, start_at: float
                       ) -> tuple[str, tuple[int, ...]]:
    """Promote through the registry's one promotion path; (previous stage, archived)."""
    from cairn.registry.promotion import promote
    from cairn.tracking.backend import backend

    b = backend(uri)
    _wait_until(start_at)
    done = promote(b, name, version, "Production", archive_existing=True,
                   user=f"worker-{version}").moved
    assert done is not None
    return done.previous_stage, done.archived


def log_metrics(uri: str, run_id: str, worker: int, batches: int, start_at: float) -> None:
    from cairn.store.entities import Metric, Param
    from cairn.store.open import open_store

    store = open_store(uri)
    try:
        _wait_until(start_at)
        for b in range(batches):
            store.log_batch(run_id, metrics=[Metric(f"w{worker}", float(s), b, b * 100 + s)
                                             for s in range(100)],
                            params=[Param(f"p{worker}", "same")])
    finally:
        store.close()


def open_new_and_register(uri: str, start_at: float) -> int:
    """Open (and so create) the database at the same moment as the other workers."""
    from cairn.store.open import open_store

    _wait_until(start_at)
    store = open_store(uri)
    try:
        return store.create_model_version("fraud", "/m", "d").version
    finally:
        store.close()
