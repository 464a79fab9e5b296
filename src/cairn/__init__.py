"""Cairn: version ML data and models by content, next to git.

The public Python API, named after MLflow's so code ports by changing the import. Every
name is resolved on first use (PEP 562), so ``import cairn`` stays fast and imports no
database, web or ML library until a function that needs one is called.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"  # the single source: pyproject.toml reads it from here

# public name -> "module" (a submodule) or "module:attribute"
_LAZY = {
    # the errors a caller tells apart; every other one is a CairnError too (cairn.errors)
    "ApprovalPending": "cairn.errors:ApprovalPending",
    "CairnError": "cairn.errors:CairnError",
    "ConflictError": "cairn.errors:ConflictError",
    "GateRefused": "cairn.errors:GateRefused",
    "NotFoundError": "cairn.errors:NotFoundError",
    "PermissionDenied": "cairn.errors:PermissionDenied",
    "UserError": "cairn.errors:UserError",
    "Client": "cairn.registry.client:Client",
    "MlflowClient": "cairn.registry.client:Client",
    "active_run": "cairn.tracking.fluent:active_run",
    "api": "cairn.api",
    "end_run": "cairn.tracking.fluent:end_run",
    "entities": "cairn.entities",
    "flush": "cairn.tracking.fluent:flush",
    "gates": "cairn.gates",
    "delete_tag": "cairn.tracking.fluent:delete_tag",
    "get_artifact_uri": "cairn.tracking.fluent:get_artifact_uri",
    "get_run": "cairn.tracking.fluent:get_run",
    "get_tracking_uri": "cairn.tracking.fluent:get_tracking_uri",
    "last_active_run": "cairn.tracking.fluent:last_active_run",
    "load_model": "cairn.pyfunc:load_model",
    "log_artifact": "cairn.tracking.fluent:log_artifact",
    "log_artifacts": "cairn.tracking.fluent:log_artifacts",
    "log_dict": "cairn.tracking.fluent:log_dict",
    "log_metric": "cairn.tracking.fluent:log_metric",
    "log_metrics": "cairn.tracking.fluent:log_metrics",
    "log_param": "cairn.tracking.fluent:log_param",
    "log_params": "cairn.tracking.fluent:log_params",
    "log_text": "cairn.tracking.fluent:log_text",
    "onnx": "cairn.onnx",
    "pyfunc": "cairn.pyfunc",
    "register_model": "cairn.registry.client:register_model",
    "search_runs": "cairn.tracking.fluent:search_runs",
    "set_experiment": "cairn.tracking.fluent:set_experiment",
    "set_tag": "cairn.tracking.fluent:set_tag",
    "set_tags": "cairn.tracking.fluent:set_tags",
    "set_tracking_uri": "cairn.tracking.fluent:set_tracking_uri",
    "sklearn": "cairn.sklearn",
    "start_run": "cairn.tracking.fluent:start_run",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'cairn' has no attribute {name!r}")
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    value = getattr(module, attribute) if attribute else module
    globals()[name] = value  # resolve once
    return value


def __dir__() -> list[str]:
    return __all__
