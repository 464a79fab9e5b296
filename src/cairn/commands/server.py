"""`cairn server`: check the settings, open the store once (so a database at an old
schema is one clear error, not a worker crash), then run uvicorn on the app factory."""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cairn.commands.uvicorn_run import run_uvicorn
from cairn.errors import UserError

if TYPE_CHECKING:
    from cairn.objects.odb import ObjectDB
    from cairn.store.base import MetadataStore

DEFAULT_PORT = 5000  # MLflow's, so clients' habits carry over
LOOPBACK_NAMES = ("localhost",)
MAX_JSON_BODY = 16 << 20  # a request body other than an artifact's (log-batch is ~1 MiB)


CONFIG_ENV = "CAIRN_SERVER_CONFIG"  # how `cairn server` hands its settings to workers


@dataclass(frozen=True)
class ServerConfig:
    """What every server process opens: the database and the artifact store."""

    backend_store_uri: str
    artifacts_destination: str
    auth: bool = False  # every request authenticated (cairn.server.acting)
    default_permission: str = "READ"  # with auth: a user's level where nothing is granted
    host: str = "127.0.0.1"  # where it listens: the Host headers it answers follow from it
    allowed_hosts: tuple[str, ...] = ()  # more Host names (fnmatch patterns, "*": any)
    max_json_body: int = MAX_JSON_BODY

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServerConfig:
        raw = os.environ.get(CONFIG_ENV)
        if not raw:
            raise UserError(f"{CONFIG_ENV} is not set: start the server with `cairn server`")
        fields = json.loads(raw)
        fields["allowed_hosts"] = tuple(fields.get("allowed_hosts", ()))
        return cls(**fields)

    def open(self) -> tuple[MetadataStore, ObjectDB]:
        """The store (an old PostgreSQL schema refused: `cairn db upgrade`) and the
        artifact store, objects by digest as on a remote."""
        from cairn.remotes.connect import connect
        from cairn.store.open import open_store

        store = open_store(self.backend_store_uri)
        try:
            if "://" not in self.artifacts_destination:
                Path(self.artifacts_destination).mkdir(parents=True, exist_ok=True)
            return store, connect("server-artifacts", self.artifacts_destination)
        except BaseException:
            store.close()
            raise


@dataclass(frozen=True)
class Served:
    url: str
    backend_store_uri: str
    artifacts_destination: str
    auth: bool = False
    default_permission: str = "READ"
    allowed_hosts: tuple[str, ...] = ()


DEFAULT_PERMISSIONS = ("NONE", "READ", "EDIT")  # NONE: only what is granted or created


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def prepare(*, backend_store_uri: str | None = None, artifacts_destination: str | None = None,
            host: str = "127.0.0.1", port: int = DEFAULT_PORT,
            allow_unauthenticated: bool = False, auth: bool = False,
            default_permission: str = "READ", allowed_hosts: tuple[str, ...] = ()) -> Served:
    """The server's settings, checked: its database opens at this Cairn's schema, and
    without auth it binds to this machine only unless told otherwise."""
    from cairn.tracking.backend import find_repo, objects_owner, objects_root

    if not is_loopback(host) and not allow_unauthenticated and not auth:
        raise UserError(f"refusing to serve on {host} without authentication: anyone who can "
                        "reach it could read and change every run and model; bind to "
                        "127.0.0.1, serve with --auth, or pass --allow-unauthenticated if a "
                        "proxy in front authenticates")
    if not 0 < port < 65536:
        raise UserError(f"--port {port} is not a TCP port (1-65535)")
    if default_permission.upper() not in DEFAULT_PERMISSIONS:
        raise UserError(f"--default-permission {default_permission}: use one of "
                        f"{', '.join(DEFAULT_PERMISSIONS)}")
    hosts = tuple(h.strip().lower() for h in allowed_hosts if h.strip())
    bad = [h for h in hosts if any(c in h for c in "/ ")]
    if bad:
        raise UserError(f"--allowed-hosts {bad[0]!r} is not a host name or pattern; give "
                        "names as clients write them in URLs, e.g. models.example.com, "
                        "*.example.com, or * for any")
    uri = database_uri(backend_store_uri)
    destination = artifacts_destination or str(objects_root(uri, objects_owner(uri,
                                                                               find_repo())))
    return Served(f"http://{_url_host(host)}:{port}", uri, destination, auth,
                  default_permission.upper(), hosts)


def database_uri(backend_store_uri: str | None) -> str:
    """The server's database: `backend_store_uri`, else the current tracking URI."""
    from cairn.store.open import normalize_uri
    from cairn.tracking.backend import get_tracking_uri

    uri = normalize_uri(backend_store_uri) if backend_store_uri else get_tracking_uri()
    if uri.startswith(("http://", "https://")):
        raise UserError(f"--backend-store-uri {uri} is a server; give the database it "
                        "should use (sqlite:///…, postgresql://…)")
    return uri


def serve(served: Served, *, host: str, port: int, workers: int = 1,
          started: Callable[[], None] | None = None) -> None:
    """Run the server until interrupted (uvicorn; `workers` processes)."""
    config = ServerConfig(served.backend_store_uri, served.artifacts_destination, served.auth,
                          served.default_permission, host, served.allowed_hosts)
    config.open()[0].close()  # fail here, once, with one clear line
    os.environ[CONFIG_ENV] = config.to_env()
    if started is not None:
        started()
    run_uvicorn("cairn.server.app:app_from_env", host=host, port=port, workers=workers)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
