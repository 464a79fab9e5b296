"""The FastAPI application: `create_app(config)`, or `app_from_env()` for uvicorn workers.

Routers: `api_v1` (Cairn's own REST API under /api/v1/, its OpenAPI document at
/api/v1/openapi.json) and `mlflow_compat` (the routes the mlflow client calls, under
/api/2.0/mlflow…). The store and the artifact store are opened once per process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from cairn.commands.server import ServerConfig
from cairn.server.acting import ActingUser, authenticated_user
from cairn.server.state import ServerState

if TYPE_CHECKING:
    from fastapi import FastAPI, Request


def create_app(config: ServerConfig) -> FastAPI:
    from fastapi import FastAPI

    from cairn import __version__
    from cairn.server import api_v1, errors, guards, mlflow_compat

    state = ServerState.open(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(title="Cairn", version=__version__, lifespan=lifespan,
                  openapi_url="/api/v1/openapi.json", docs_url="/api/v1/docs", redoc_url=None,
                  description="Cairn's REST API: tracking, the model registry, gates, "
                              "promotion requests, lineage, audit history and artifacts.")
    app.state.cairn = state
    errors.install(app)
    app.add_middleware(ActingUser, auth=state.auth)
    guards.install(app, config)  # outermost: Host, Content-Type and body size first

    # async: answered on the event loop, no thread-pool round trip for a probe
    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/version", include_in_schema=False)
    async def version() -> dict[str, str]:
        return {"version": __version__}

    # The mlflow client's routes next: its hot reads match without walking /api/v1's.
    app.router.routes.append(mlflow_compat.routes)
    app.include_router(mlflow_compat.router)
    app.include_router(api_v1.router, prefix="/api/v1")
    return app


def app_from_env() -> FastAPI:
    """The app of a `cairn server` worker process (uvicorn's factory)."""
    return create_app(ServerConfig.from_env())


def state_of(request: Request) -> ServerState:
    """The process's ServerState (a FastAPI dependency); with --auth, as the request's
    authenticated user may use it, so every store call a route makes is checked."""
    found: Any = request.app.state.cairn
    assert isinstance(found, ServerState)
    if found.auth is None:
        return found
    user = authenticated_user(request.scope)
    if user is None:  # the middleware lets no such request through: fail closed anyway
        from cairn.errors import PermissionDenied

        raise PermissionDenied("this request is not authenticated")
    return found.for_user(user)
