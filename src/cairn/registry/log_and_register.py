"""`log_model` of the public flavor modules (cairn.sklearn, cairn.pyfunc, cairn.onnx):
log a saved model to the active run, and register it when asked to."""

from __future__ import annotations

from cairn.errors import UserError
from cairn.registry.client import register_model
from cairn.tracking.models import ModelInfo, SaveModel
from cairn.tracking.models import log_model as log_saved_model


def log_and_register(save: SaveModel, artifact_path: str | None,
                     registered_model_name: str | None, name: str | None = None) -> ModelInfo:
    info = log_saved_model(save, _artifact_name(artifact_path, name))
    if registered_model_name:
        version = register_model(info.model_uri, registered_model_name)
        info.registered_model_version = version.version
    return info


def _artifact_name(artifact_path: str | None, name: str | None) -> str:
    """MLflow 3 calls it `name`, MLflow 2 `artifact_path`: either, "model" by default."""
    if artifact_path and name and artifact_path != name:
        raise UserError(f"log_model got artifact_path={artifact_path!r} and name={name!r}; "
                        "pass only one (MLflow 3 calls it name)")
    return name or artifact_path or "model"

