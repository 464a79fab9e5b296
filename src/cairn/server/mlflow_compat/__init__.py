"""The MLflow-compatible subset: the REST routes the real `mlflow` client calls
(/api/2.0/mlflow/…, /api/2.0/mlflow-artifacts/…)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
