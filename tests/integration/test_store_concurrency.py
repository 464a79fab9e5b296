"""Concurrent writers on one store, from separate processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.store.base import MetadataStore
from tests.integration import store_workers

WORKERS = 8


@pytest.fixture(scope="module")
def pool() -> Iterator[multiprocessing.pool.Pool]:
    """Worker processes, started once, with SQLAlchemy and the store already imported."""
    with multiprocessing.get_context("spawn").Pool(WORKERS) as p:
        p.map(store_workers.warm_up, range(WORKERS))
        yield p


def start_soon() -> float:
    return time.time() + 1.5  # every worker has connected by then: they start together


@pytest.mark.slow
def test_concurrent_registrations_get_consecutive_versions(
        store: MetadataStore, store_uri: str, pool: multiprocessing.pool.Pool) -> None:
    at = start_soon()
    results = pool.starmap(store_workers.register_versions,
                           [(store_uri, "fraud", 5, at)] * WORKERS)
    numbers = sorted(n for result in results for n in result)
    assert numbers == list(range(1, WORKERS * 5 + 1))  # no gap, no duplicate
    for result in results:
        assert result == sorted(result)
    registered = [e.version for e in store.get_audit_log("fraud") if e.action == "register"]
    assert sorted(registered) == numbers  # type: ignore[type-var]


@pytest.mark.slow
def test_concurrent_promotions_leave_exactly_one_production_version(
        store: MetadataStore, store_uri: str, pool: multiprocessing.pool.Pool) -> None:
    for i in range(WORKERS):
        store.create_model_version("fraud", f"/m/{i}", f"d{i}")
    at = start_soon()
    stages = pool.starmap(store_workers.promote,
                          [(store_uri, "fraud", v, at) for v in range(1, WORKERS + 1)])
    assert stages == ["Production"] * WORKERS  # each call saw its own promotion succeed
    production = store.get_latest_versions("fraud", ["Production"])
    holders = [v.version for v in store.search_model_versions("current_stage = 'Production'")]
    assert len(holders) == 1 and production[0].version == holders[0]
    # every promotion is in the log, and every version but the winner was archived after
    log = [e for e in store.get_audit_log("fraud") if e.action == "transition"]
    promoted = [e for e in log if e.to_value == "Production"]
    assert sorted(e.version for e in promoted) == list(range(1, WORKERS + 1))  # type: ignore[type-var]
    archived = {e.version for e in log if e.to_value == "Archived"}
    assert archived == set(range(1, WORKERS + 1)) - set(holders)
    assert promoted[-1].version == holders[0]  # the last promotion wins


@pytest.mark.slow
def test_concurrent_promotions_each_report_what_they_archived(
        store: MetadataStore, store_uri: str, pool: multiprocessing.pool.Pool) -> None:
    """What `cairn models promote` reports comes from its own transaction: read before
    it, the archived lists missed what a concurrent promotion did in between."""
    for i in range(WORKERS):
        store.create_model_version("fraud", f"/m/{i}", f"d{i}")
    at = start_soon()
    reports = pool.starmap(store_workers.promote_and_report,
                           [(store_uri, "fraud", v, at) for v in range(1, WORKERS + 1)])
    archivings = [e for e in store.get_audit_log("fraud") if e.to_value == "Archived"]
    for version, (previous, archived) in enumerate(reports, start=1):
        by_this_one = [e.version for e in archivings if e.user_id == f"worker-{version}"]
        assert (previous, list(archived)) == ("None", sorted(by_this_one))  # type: ignore[type-var]
    reported = sorted(v for _, archived in reports for v in archived)
    assert reported == sorted(e.version for e in archivings)  # type: ignore[type-var]
    assert len(reported) == WORKERS - 1  # all but the last promotion were archived once


@pytest.mark.slow
def test_concurrent_log_batches_to_one_run(
        store: MetadataStore, store_uri: str, pool: multiprocessing.pool.Pool) -> None:
    run_id = store.create_run("0", "ana", 1).info.run_id
    at = start_soon()
    pool.starmap(store_workers.log_metrics, [(store_uri, run_id, w, 5, at)
                                             for w in range(WORKERS)])
    run = store.get_run(run_id)
    assert len(run.data.metrics) == WORKERS and len(run.data.params) == WORKERS
    for w in range(WORKERS):
        assert len(store.get_metric_history(run_id, f"w{w}")) == 500
        assert run.data.metrics[f"w{w}"] == 99.0  # step 4, the last value of the last batch


@pytest.mark.slow
def test_processes_creating_one_new_sqlite_file_at_once(
        tmp_path: Path, pool: multiprocessing.pool.Pool) -> None:
    uri = f"sqlite:///{tmp_path / 'new.db'}"
    at = start_soon()
    versions = pool.starmap(store_workers.open_new_and_register, [(uri, at)] * WORKERS)
    assert sorted(versions) == list(range(1, WORKERS + 1))
