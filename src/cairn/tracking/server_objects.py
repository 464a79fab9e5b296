"""The objects of a run or model logged through a Cairn server live on the server.

With an http(s) tracking URI the store is a `RestStore`: artifacts and models are still
written to the local cache first (so a workspace can link them), then every object the
server lacks is sent to it — the server refuses any whose bytes do not hash to their
name. Reading one back fetches what the cache lacks from the server, level by level (a
manifest names its children), each object verified before it is installed. With a
database as the store both are no-ops.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from cairn.errors import IntegrityError
from cairn.objects.tree import read_tree

if TYPE_CHECKING:
    from cairn.store.rest import RestStore
    from cairn.tracking.backend import Backend

Root = tuple[str, bool]  # (digest, is a directory manifest)


def server_of(b: Backend) -> RestStore | None:
    if not b.store.enforces_registry_rules:
        return None
    from cairn.store.rest import RestStore

    return b.store if isinstance(b.store, RestStore) else None


def share(b: Backend, roots: Iterable[Root]) -> int:
    """Send the objects below `roots` that the server lacks; how many were sent."""
    server = server_of(b)
    if server is None:
        return 0
    missing = server.missing_objects(_closure(b, roots))
    for oid in missing:
        with b.odb.open(oid) as source:
            server.upload_object(oid, source, b.odb.size(oid))
    return len(missing)


def fetch(b: Backend, roots: Iterable[Root]) -> bool:
    """Fetch what the cache lacks below `roots` from the server; False without one."""
    server = server_of(b)
    if server is None:
        return False
    level = list(roots)
    while level:
        below: list[Root] = []
        for oid, is_dir in level:
            if not b.odb.exists(oid):
                _download(server, b, oid)
            if is_dir:
                below.extend((e.digest, e.is_dir) for e in read_tree(b.odb, oid))
        level = below
    return True


def _closure(b: Backend, roots: Iterable[Root]) -> list[str]:
    """Every object below `roots` that the cache holds (a manifest it lacks is the
    server's already: it came from there)."""
    found: dict[str, None] = {}
    level = list(roots)
    while level:
        below: list[Root] = []
        for oid, is_dir in level:
            if oid in found or not b.odb.exists(oid):
                continue
            found[oid] = None
            if is_dir:
                below.extend((e.digest, e.is_dir) for e in read_tree(b.odb, oid))
        level = below
    return list(found)


class _Hashing:
    """A file being written that hashes what passes through it."""

    def __init__(self, out: object) -> None:
        import blake3

        self.out, self.hasher = out, blake3.blake3()

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        return self.out.write(data)  # type: ignore[attr-defined, no-any-return]


def _download(server: RestStore, b: Backend, oid: str) -> None:
    b.odb.root.mkdir(parents=True, exist_ok=True)
    with b.odb.receive(oid) as out:  # installed only if the block completes
        hashing = _Hashing(out)
        server.download_object(oid, hashing)  # type: ignore[arg-type]
        got = hashing.hasher.hexdigest()
        if got != oid:
            raise IntegrityError(f"object {oid} from {server.url} hashes to {got}: refused "
                                 "(nothing was installed); fetch it again", oid)
