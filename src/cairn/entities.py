"""The values the tracking API and the registry return, under MLflow's module name
(``mlflow.entities``), so ported code such as ``ViewType.ACTIVE_ONLY`` keeps working."""

from __future__ import annotations

from cairn.store.entities import (
    Experiment,
    Metric,
    ModelVersion,
    Param,
    RegisteredModel,
    Run,
    RunData,
    RunInfo,
    RunTag,
    ViewType,
)

__all__ = ["Experiment", "Metric", "ModelVersion", "Param", "RegisteredModel", "Run",
           "RunData", "RunInfo", "RunTag", "ViewType"]
