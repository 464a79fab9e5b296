"""`log_model`: save a model with its flavor, store it as objects, record it on the run.

Flow: the flavor saves into a temp directory → its files and manifests go into the
object store → the run records the directory (and every file in it) by digest. The
model's URI is ``runs:/<run_id>/<artifact_path>``; registering it (the registry layer,
above this one) names the same digest, so a version can never change under its name.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.errors import UserError
from cairn.tracking import artifacts, fluent, server_objects

if TYPE_CHECKING:
    from cairn.flavors.base import ModelMetadata
    from cairn.flavors.signature import Signature


@dataclass
class ModelInfo:
    """What `log_model` returns (MLflow's ModelInfo names)."""

    artifact_path: str
    model_uri: str
    run_id: str
    digest: str  # the model directory's manifest: its immutable identity
    flavors: dict[str, dict[str, Any]] = field(default_factory=dict)
    signature: Signature | None = None
    utc_time_created: str = ""
    metadata: ModelMetadata | None = None
    registered_model_version: int | None = None

    @property
    def model_uuid(self) -> str:
        return self.digest

    @property
    def signature_dict(self) -> dict[str, Any] | None:
        return None if self.signature is None else self.signature.to_dict()


SaveModel = Callable[[Path], "ModelMetadata"]


def log_model(save: SaveModel, artifact_path: str) -> ModelInfo:
    """Save a model through `save(path)` and log it to the active run (started if none)."""
    path = artifacts.clean_artifact_path(artifact_path)
    if not path:
        raise UserError("log_model needs an artifact_path for the model, e.g. 'model'")
    run = fluent._get_or_start_run()
    b, run_id = run._backend, run.info.run_id
    with tempfile.TemporaryDirectory(prefix="cairn-model-") as tmp:
        local = Path(tmp) / "model"
        meta = save(local)
        with b.writing_objects():
            records = artifacts.store_dir(b.odb, local, path, run_id)
            b.store.log_artifacts(run_id, records)
            server_objects.share(b, [(records[0].digest, True)])
    return ModelInfo(artifact_path=path, model_uri=f"runs:/{run_id}/{path}", run_id=run_id,
                     digest=records[0].digest, flavors=meta.flavors, signature=meta.signature,
                     utc_time_created=meta.created, metadata=meta)
