"""What the public flavor modules (cairn.sklearn, cairn.pyfunc, cairn.onnx) share:
log a model and optionally register it; find a model directory from a URI or path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cairn.registry.client import register_model
from cairn.registry.loading import model_path
from cairn.tracking.models import ModelInfo, SaveModel
from cairn.tracking.models import log_model as log_saved_model


def log_and_register(save: SaveModel, artifact_path: str,
                     registered_model_name: str | None) -> ModelInfo:
    info = log_saved_model(save, artifact_path)
    if registered_model_name:
        version = register_model(info.model_uri, registered_model_name)
        info.registered_model_version = version.version
    return info


def local_model_dir(model_uri: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """The directory to load (materialized and verified for a URI), and its lineage."""
    return model_path(str(model_uri))
