"""Cairn's REST API, version 1 (mounted at /api/v1/)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
