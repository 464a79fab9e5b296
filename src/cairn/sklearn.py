"""scikit-learn models, as `mlflow.sklearn` has them: save_model, log_model, load_model.

Saved with skops by default, which loads without pickle; ``serialization_format=
"pickle"`` is available, and such a model loads only with ``trusted=True``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from cairn.flavors.sklearn import save_model
from cairn.registry.loading import model_path
from cairn.registry.log_and_register import log_and_register
from cairn.tracking.models import ModelInfo

__all__ = ["load_model", "log_model", "save_model"]


def log_model(sk_model: Any, artifact_path: str | None = None, *, input_example: Any = None,
              signature: Any = None, registered_model_name: str | None = None,
              serialization_format: str = "skops", metadata: Mapping[str, Any] | None = None,
              pip_requirements: list[str] | None = None,
              name: str | None = None) -> ModelInfo:
    """Save `sk_model` into the active run's artifacts (a run starts if none is active);
    with `registered_model_name`, register it as that model's next version."""
    def save(path: os.PathLike[str]) -> Any:
        return save_model(sk_model, path, serialization_format=serialization_format,
                          input_example=input_example, signature=signature,
                          metadata=metadata, pip_requirements=pip_requirements)

    return log_and_register(save, artifact_path, registered_model_name, name)


def load_model(model_uri: str | os.PathLike[str], trusted: bool = False) -> Any:
    """The scikit-learn estimator at a models:/ or runs:/ URI, or in a model directory."""
    from cairn.flavors.sklearn import load_model as load_dir

    path, _ = model_path(str(model_uri))
    return load_dir(path, trusted=trusted, source=str(model_uri))
