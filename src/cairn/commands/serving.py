"""`cairn serve PACKAGE|MODEL_URI`: check the settings, open the model once (a package is
verified, and its signature checked with a key, before anything is loaded), then run
uvicorn on the scoring app (cairn.serving.app)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.commands.server import is_loopback
from cairn.commands.uvicorn_run import run_uvicorn
from cairn.errors import UserError

if TYPE_CHECKING:
    from cairn.flavors.base import LoadedModel

DEFAULT_PORT = 5000  # `mlflow models serve`'s, so clients' habits carry over
DEFAULT_BATCH_SIZE = 64  # rows per predict call, for a model URI (a package says its own)
MAX_BODY = 16 << 20  # bytes of one request body
CONFIG_ENV = "CAIRN_SERVE_CONFIG"  # how `cairn serve` hands its settings to workers
PACKAGE_PREFIX = "package:"
PACKAGE_SUFFIX = ".cairnpkg"  # cairn.packaging.manifest.SUFFIX, without importing it


@dataclass(frozen=True)
class ServeConfig:
    """What every scoring process opens, and how it batches."""

    source: str  # a package file, a models:/ or runs:/ URI, or a model directory
    trusted: bool = False
    public_key: str | None = None
    batch_size: int | None = None  # None: the package's serving.yaml, else the default
    batch_wait_ms: float = 0.0
    max_body: int = MAX_BODY
    host: str = "127.0.0.1"
    digest: str | None = None  # the package verified at start, which every worker serves

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeConfig:
        raw = os.environ.get(CONFIG_ENV)
        if not raw:
            raise UserError(f"{CONFIG_ENV} is not set: start the server with `cairn serve`")
        return cls(**json.loads(raw))


@dataclass
class ServedModel:
    """An open model and what GET /metadata says about it."""

    model: LoadedModel
    batch_size: int
    metadata: dict[str, Any] = field(default_factory=dict)
    pinned: str = ""  # the source to reopen in another worker: the same version


def is_package(source: str) -> bool:
    return source.startswith(PACKAGE_PREFIX) or source.endswith(PACKAGE_SUFFIX) \
        or Path(source).is_file()


def open_model(config: ServeConfig) -> ServedModel:
    """The model `config` names, loaded; a package verified first."""
    if is_package(config.source):
        return _open_package(config)
    if config.public_key is not None:
        raise UserError(f"--key checks a package's signature; {config.source} is not a "
                        "package (build one with `cairn package build`)")
    from cairn.registry.loading import load_model

    model = load_model(config.source, trusted=config.trusted)
    _check_pandas(model, config.source)
    lineage = dict(model.metadata.lineage)
    name, version = lineage.get("name"), lineage.get("version")
    pinned = f"models:/{name}/{version}" if config.source.startswith("models:/") and name \
        and version is not None else config.source
    metadata = {
        "source": config.source, "kind": "model", "digest": lineage.get("digest"),
        "model": {"name": name, "version": version, "source": lineage.get("model_uri",
                                                                          config.source),
                  "run_id": lineage.get("run_id")},
        "lineage": _summary(lineage)}
    return ServedModel(model, config.batch_size or DEFAULT_BATCH_SIZE,
                       _with_model(metadata, model), pinned)


def _open_package(config: ServeConfig) -> ServedModel:
    from cairn.packaging.load import load_package

    path = config.source.removeprefix(PACKAGE_PREFIX)
    model, manifest = load_package(path, trusted=config.trusted, public_key=config.public_key,
                                   digest=config.digest)
    _check_pandas(model, path)
    batch = config.batch_size or int(manifest.serving.get("batch_size") or DEFAULT_BATCH_SIZE)
    metadata = {"source": config.source, "kind": "package", "digest": manifest.digest,
                "package_version": manifest.package_version,
                "model": dict(manifest.model), "lineage": _summary(dict(manifest.lineage)),
                "serving": dict(manifest.serving)}
    return ServedModel(model, batch, _with_model(metadata, model), config.source)


def _summary(lineage: dict[str, Any]) -> dict[str, Any]:
    """Where the version came from, in short (`cairn models lineage` has the rest)."""
    keys = ("uri", "name", "version", "stage", "aliases", "run_id", "digest", "git_commit",
            "git_branch", "git_dirty", "git", "data", "params", "metrics", "run")
    return {k: lineage[k] for k in keys if k in lineage}


def _with_model(metadata: dict[str, Any], model: LoadedModel) -> dict[str, Any]:
    from cairn import __version__

    meta = model.metadata
    return {**metadata, "loader": meta.loader, "cairn_version": __version__,
            "model_cairn_version": meta.cairn_version,
            "signature": None if meta.signature is None else meta.signature.to_dict()}


def _check_pandas(model: LoadedModel, source: str) -> None:
    from cairn.flavors.signature import ColumnSchema

    signature = model.signature
    if signature is None or not isinstance(signature.inputs, ColumnSchema):
        return
    try:
        import pandas  # noqa: F401
    except ImportError:
        raise UserError(f"{source} takes named columns, which need pandas to be served; "
                        "pip install pandas") from None


def prepare(source: str, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
            trusted: bool = False, public_key: str | None = None,
            batch_size: int | None = None, batch_wait_ms: float = 0.0,
            max_body: int = MAX_BODY, allow_unauthenticated: bool = False) -> ServeConfig:
    """The settings, checked: the scoring server has no authentication, so it binds to
    this machine only unless told otherwise."""
    if not is_loopback(host) and not allow_unauthenticated:
        raise UserError(f"refusing to serve on {host}: the scoring server has no "
                        "authentication, so anyone who can reach it could use the model and "
                        "read its lineage; bind to 127.0.0.1, or pass "
                        "--allow-unauthenticated if a proxy in front authenticates")
    if not 0 < port < 65536:
        raise UserError(f"--port {port} is not a TCP port (1-65535)")
    if batch_size is not None and batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: give at least 1 row")
    if public_key is not None and not Path(public_key).is_file():
        raise UserError(f"--key {public_key}: no such file (a public key from "
                        "`cairn package keygen`)")
    return ServeConfig(source, trusted, public_key, batch_size, batch_wait_ms, max_body, host)


_opened: ServedModel | None = None  # what serve() opened, for the app in this process


def serve(config: ServeConfig, *, port: int, workers: int = 1,
          started: Callable[[ServedModel], None] | None = None) -> None:
    """Open the model (failing here, once, with one clear line), then run uvicorn until
    interrupted. Each of `workers` processes opens the same version again."""
    global _opened
    served = open_model(config)
    digest = served.metadata["digest"] if served.metadata.get("kind") == "package" else None
    os.environ[CONFIG_ENV] = replace(config, source=served.pinned, digest=digest).to_env()
    _opened = served if workers == 1 else None
    if started is not None:
        started(served)
    # no access log: a line a prediction costs more than the prediction (MLflow's has one)
    run_uvicorn("cairn.serving.app:app_from_env", host=config.host, port=port,
                workers=workers, access_log=False)


def take_opened() -> ServedModel | None:
    """The model serve() opened in this process (once), so one worker loads it once."""
    global _opened
    found, _opened = _opened, None
    return found
