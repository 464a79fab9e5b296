"""The tracking operations: runs, experiments, and the metadata database's schema — as
the CLI and the server call them.

Each works on the metadata store of `tracking_uri` (default: the current tracking URI,
`cairn.tracking.backend`), which needs no Cairn project: outside one it is
``~/.cairn/cairn.db``. Nothing is printed: each returns plain data or a result object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cairn.store.base import MetadataStore
    from cairn.store.entities import Experiment, Run


def _store(tracking_uri: str | None) -> MetadataStore:
    from cairn.tracking.backend import backend

    return backend(tracking_uri).store


# -- runs -------------------------------------------------------------------------------

@dataclass
class RunsFound:
    runs: list[Run]  # newest first, or as `order_by` says
    experiments: dict[str, Experiment]  # id → experiment, for every experiment searched


def list_runs(*, experiments: Sequence[str] = (), filter_string: str = "",
              order_by: Sequence[str] = (), max_results: int = 100, deleted: bool = False,
              tracking_uri: str | None = None) -> RunsFound:
    """Runs of the experiments named (default: every active one) matching the MLflow
    filter `filter_string`; with `deleted`, the deleted runs instead."""
    from cairn.tracking.queries import experiments_named, search_runs

    store = _store(tracking_uri)
    searched = experiments_named(store, experiments)
    return RunsFound(search_runs(store, list(searched), filter_string, order_by, max_results,
                                 deleted), searched)


def show_run(run_id: str, *, tracking_uri: str | None = None) -> dict[str, Any]:
    """A run's info, experiment name, params, metrics, tags, lineage and artifacts."""
    from cairn.tracking.queries import run_details

    return run_details(_store(tracking_uri), run_id)


def compare_runs(run_ids: Sequence[str], *, tracking_uri: str | None = None
                 ) -> dict[str, Any]:
    """Params and metrics of several runs, key by key (None where a run lacks the key)."""
    from cairn.tracking.queries import compare_runs as compare

    return compare(_store(tracking_uri), run_ids)


def delete_run(run_id: str, *, tracking_uri: str | None = None) -> None:
    """Mark a run deleted (`restore_run` brings it back)."""
    _store(tracking_uri).delete_run(run_id)


def restore_run(run_id: str, *, tracking_uri: str | None = None) -> None:
    _store(tracking_uri).restore_run(run_id)


# -- experiments --------------------------------------------------------------------------

def list_experiments(*, deleted: bool = False, tracking_uri: str | None = None
                     ) -> list[Experiment]:
    """The active experiments (with `deleted`, the deleted ones)."""
    from cairn.store.base import ACTIVE_ONLY, DELETED_ONLY

    return list(_store(tracking_uri).search_experiments(DELETED_ONLY if deleted else ACTIVE_ONLY))


def create_experiment(name: str, *, tracking_uri: str | None = None) -> str:
    """A new experiment called `name`; its id."""
    return str(_store(tracking_uri).create_experiment(name))


# -- the database's schema ----------------------------------------------------------------

@dataclass(frozen=True)
class SchemaRevision:
    uri: str  # the database
    revision: str | None  # its schema revision (before an upgrade); None: empty
    head: str | None  # the newest this Cairn knows (after an upgrade: the database's)

    @property
    def up_to_date(self) -> bool:
        return self.revision == self.head


def db_upgrade(uri: str | None = None) -> SchemaRevision:
    """Migrate the database at `uri` (default: the current tracking URI) to the newest
    schema; `revision` is the one it had."""
    from cairn.store.open import upgrade

    target = _database(uri)
    return SchemaRevision(target, *upgrade(target))


def db_current(uri: str | None = None) -> SchemaRevision:
    """The schema revision of the database at `uri` (default: the current tracking URI),
    without creating it."""
    from cairn.store.open import current

    target = _database(uri)
    return SchemaRevision(target, *current(target))


def _database(uri: str | None) -> str:
    if uri:
        return uri
    from cairn.tracking.backend import get_tracking_uri

    return get_tracking_uri()
