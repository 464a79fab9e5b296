"""gc never deletes a registered model or a live run's artifacts.

Importing this module registers a reference provider with `cairn.workspace.gc`: every
digest a registered model version names, and every artifact of a run that is not
deleted, is kept whatever gc's scope. (MLflow's gc deletes a deleted run's artifacts
even when a Production version was registered from them; here the store refuses to
delete such a run in the first place.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from cairn.errors import FormatError, NotFoundError
from cairn.objects.odb import ObjectDB
from cairn.objects.tree import decode_tree
from cairn.project.context import ProjectContext
from cairn.store.base import ACTIVE_ONLY, ALL, MetadataStore
from cairn.store.entities import PagedList, Run
from cairn.workspace.gc import Reference, register_reference_provider

SOURCE = "the model registry and runs"
MANIFEST_START = b'{"entries":['
T = TypeVar("T")


@register_reference_provider
def registry_references(project: ProjectContext, revisions: Sequence[str]) -> Iterable[Reference]:
    from cairn.store.open import sqlite_path
    from cairn.tracking.backend import backend, get_tracking_uri

    db = sqlite_path(get_tracking_uri())
    if db is not None and not db.exists():
        return []  # nothing tracked yet; do not create a database for gc
    store = backend().store
    digests = store.referenced_digests()
    dirs = _known_dirs(store, project.odb, digests)
    return [Reference(d, d in dirs, "", SOURCE) for d in sorted(digests)]


def _known_dirs(store: MetadataStore, odb: ObjectDB, digests: set[str]) -> set[str]:
    """Which digests are directory manifests: read from the cache when the object is
    there, else from the store's records (run artifacts say; versions are directories)."""
    dirs: set[str] = set()
    unknown: set[str] = set()
    for digest in digests:
        kind = _kind_in_cache(odb, digest)
        if kind is None:
            unknown.add(digest)
        elif kind:
            dirs.add(digest)
    if unknown:
        dirs |= unknown & _recorded_dirs(store)
    return dirs


def _kind_in_cache(odb: ObjectDB, digest: str) -> bool | None:
    """True for a manifest, False for a plain file, None when the cache lacks it."""
    try:
        with odb.open(digest) as f:
            if f.read(len(MANIFEST_START)) != MANIFEST_START:
                return False
            decode_tree(MANIFEST_START + f.read(), digest)
            return True
    except NotFoundError:
        return None
    except FormatError:
        return False


def _recorded_dirs(store: MetadataStore) -> set[str]:
    dirs = {mv.digest for mv in _paged(
        lambda token: store.search_model_versions("", 10000, None, token))}
    for experiment in _paged(lambda token: store.search_experiments(ALL, 1000, None, None,
                                                                     token)):
        for run in _runs(store, experiment.experiment_id):
            dirs.update(a.digest for a in store.list_artifacts(run.info.run_id) if a.is_dir)
    return dirs


def _runs(store: MetadataStore, experiment_id: str) -> Iterator[Run]:
    return _paged(lambda token: store.search_runs([experiment_id], "", ACTIVE_ONLY, 1000, None,
                                                  token))


def _paged(fetch: Callable[[str | None], PagedList[T]]) -> Iterator[T]:
    token = None
    while True:
        page = fetch(token)
        yield from page
        token = page.token
        if not token:
            return
