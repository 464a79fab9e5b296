"""Generic Python models and the flavor-independent loader, as `mlflow.pyfunc` has them.

`load_model` loads a model of any flavor and returns it with a ``predict`` that checks
its input against the saved signature, and ``metadata`` that carries its lineage.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from cairn.flavors.base import LoadedModel
from cairn.flavors.pyfunc import PythonModel, PythonModelContext, save_model
from cairn.packaging.load import PACKAGE_SCHEME
from cairn.registry.loading import load_model as _load_model
from cairn.registry.log_and_register import log_and_register
from cairn.tracking.models import ModelInfo

__all__ = ["LoadedModel", "PythonModel", "PythonModelContext", "load_model", "log_model",
           "save_model"]


def log_model(artifact_path: str | None = None, *, python_model: Any,
              artifacts: Mapping[str, str | os.PathLike[str]] | None = None,
              code_paths: Sequence[str | os.PathLike[str]] | None = None,
              input_example: Any = None, signature: Any = None,
              registered_model_name: str | None = None,
              metadata: Mapping[str, Any] | None = None,
              pip_requirements: list[str] | None = None,
              name: str | None = None) -> ModelInfo:
    """Save a generic Python model into the active run's artifacts; optionally register."""
    def save(path: os.PathLike[str]) -> Any:
        return save_model(path, python_model=python_model, artifacts=artifacts,
                          code_paths=code_paths, input_example=input_example,
                          signature=signature, metadata=metadata,
                          pip_requirements=pip_requirements)

    return log_and_register(save, artifact_path, registered_model_name, name)


def load_model(model_uri: str | os.PathLike[str], trusted: bool = False,
               dst_path: str | None = None) -> LoadedModel:
    """Any model, with a schema-checking predict and its lineage in `.metadata.lineage`:
    models:/…, runs:/… (from the registry), package:PATH (a model package, verified first,
    no project needed), or a model directory. Pickle-based models load only with
    `trusted=True`; a model's own code runs without it only when it comes verified from
    the store, or from a package whose signature was checked."""
    if str(model_uri).startswith(PACKAGE_SCHEME):
        from cairn.packaging.load import load_package

        return load_package(str(model_uri)[len(PACKAGE_SCHEME):], trusted=trusted)[0]
    return _load_model(model_uri, trusted=trusted, dst_path=dst_path)
