"""Cairn's own REST API under /api/v1/: every `MetadataStore` operation, and the
registry's rule-bearing operations (promote, aliases, approvals, gate checks) evaluated
here, on the server — the client never decides its own gates.

`cairn.store.rest.RestStore` is its client; the OpenAPI document at /api/v1/openapi.json
describes every route, and docs/server.md lists them.
"""

from __future__ import annotations

from fastapi import APIRouter

from cairn.server.api_v1 import governance, objects, registry, tracking

router = APIRouter()
router.include_router(tracking.router)
router.include_router(registry.router)
router.include_router(governance.router)
router.include_router(objects.router)
