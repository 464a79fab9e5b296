"""ONNX models, as `mlflow.onnx` has them: save_model, log_model, load_model."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from cairn.flavors.onnx import save_model
from cairn.registry.loading import model_path
from cairn.registry.log_and_register import log_and_register
from cairn.tracking.models import ModelInfo

__all__ = ["load_model", "log_model", "save_model"]


def log_model(onnx_model: Any, artifact_path: str | None = None, *, input_example: Any = None,
              signature: Any = None, registered_model_name: str | None = None,
              metadata: Mapping[str, Any] | None = None,
              pip_requirements: list[str] | None = None,
              name: str | None = None) -> ModelInfo:
    """Save an ``onnx.ModelProto`` into the active run's artifacts; optionally register."""
    def save(path: os.PathLike[str]) -> Any:
        return save_model(onnx_model, path, input_example=input_example, signature=signature,
                          metadata=metadata, pip_requirements=pip_requirements)

    return log_and_register(save, artifact_path, registered_model_name, name)


def load_model(model_uri: str | os.PathLike[str], trusted: bool = False) -> Any:
    """The ``onnx.ModelProto`` at a models:/ or runs:/ URI, or in a model directory
    (ONNX holds no code; `trusted` is accepted for symmetry and ignored)."""
    from cairn.flavors.onnx import load_model as load_dir

    path, _ = model_path(str(model_uri))
    return load_dir(path, source=str(model_uri))
