"""The scoring application: `create_app(served, config)`, or `app_from_env()` for uvicorn.

    POST /invocations  MLflow's scoring protocol (protocol.py): {"predictions": …}
    POST /predict      the same, and a bare JSON array or object taken as "inputs";
                       the answer also names the model's digest
    GET  /health, /ping   200 once the model is loaded
    GET  /metadata     the digest, the model's name and version, a lineage summary
    GET  /version      Cairn's version

Every refusal is one JSON object, {"error_code", "message"} (MLflow's shape): 400 for a
body that cannot be read, 413 over the size limit (counted as the body arrives), 415 for
another Content-Type, 422 for input the model's schema refuses (naming the column or
tensor and the type it expects). Bad input never gets a 500.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response

from cairn.commands.server import is_loopback
from cairn.commands.serving import ServeConfig, ServedModel, open_model, take_opened
from cairn.errors import UserError
from cairn.flavors.signature import SchemaError
from cairn.serving.batching import Batcher
from cairn.serving.protocol import BadRequest, Reader, answer

HEALTH_PATHS = frozenset({"/health", "/ping"})  # load balancers probe by address


class TooLarge(BadRequest):
    status = 413


def create_app(served: ServedModel, config: ServeConfig) -> FastAPI:
    from cairn import __version__

    signature = served.model.signature
    reader = Reader(None if signature is None else signature.inputs)
    batcher = Batcher(served.model.predict, served.batch_size,
                      config.batch_wait_ms / 1000)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="Cairn scoring server", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    digest = served.metadata.get("digest")

    async def score(request: Request, bare: bool) -> Response:
        try:
            body = await _body(request, config.max_body)
            parsed = reader.read(body, request.headers.get("content-type"), bare=bare)
            predictions = await batcher.predict(parsed.inputs)
            extra = {"digest": digest} if bare else {}
            return _json(200, answer(predictions, **extra))
        except Exception as e:
            return _refusal(e)

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        return await score(request, bare=False)

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        return await score(request, bare=True)

    @app.get("/health")
    @app.get("/ping")  # async routes: no hop to a thread pool for an answer this small
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata")
    async def metadata() -> dict[str, Any]:
        return {**served.metadata, "batch_size": served.batch_size,
                "predict_calls": batcher.calls}

    @app.get("/version")
    async def version() -> dict[str, str]:
        return {"version": __version__}

    app.add_middleware(TrustedHost, bound=config.host)
    return app


def app_from_env() -> FastAPI:
    """The app of a `cairn serve` worker process (uvicorn's factory): the model `serve`
    opened in this process, else opened again from the settings it handed down."""
    config = ServeConfig.from_env()
    return create_app(take_opened() or open_model(config), config)


async def _body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is over `limit` bytes (before the rest is read)."""
    length = request.headers.get("content-length", "")
    if length.strip().isdigit() and int(length) > limit:
        raise TooLarge(_over(limit))
    chunks, seen = [], 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise TooLarge(_over(limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _over(limit: int) -> str:
    return (f"the request body is over {limit} bytes, this server's limit; send fewer rows "
            "a request, or start `cairn serve` with a larger --max-body")


def _refusal(error: Exception) -> Response:
    """The answer to a request that failed (protocol, schema, or the model on its input)."""
    if isinstance(error, SchemaError):
        status, code, message = 422, "INVALID_PARAMETER_VALUE", str(error)
    elif isinstance(error, BadRequest):
        status, message = error.status, str(error)
        code = "RESOURCE_LIMIT_EXCEEDED" if status == 413 else "BAD_REQUEST"
    elif isinstance(error, UserError):
        status, code, message = 400, "BAD_REQUEST", str(error)
    else:  # the model raised on this input: the input's fault, as MLflow answers it
        status, code = 400, "BAD_REQUEST"
        message = (f"this input could not be scored ({type(error).__name__}: {error}); "
                   "check it against GET /metadata's signature")
    response = _json(status, json.dumps({"error_code": code, "message": message}).encode())
    if status == 413:
        response.headers["connection"] = "close"  # the rest of the body is not read
    return response


def _json(status: int, body: bytes) -> Response:
    return Response(content=body, status_code=status, media_type="application/json")


class TrustedHost:
    """On a loopback address, only requests naming this machine (localhost, a loopback
    address): a web page whose name is re-pointed at 127.0.0.1 (DNS rebinding) cannot
    score or read /metadata through a browser. Elsewhere the operator chose who reaches it."""

    def __init__(self, app: Any, bound: str) -> None:
        self.app, self.check = app, is_loopback(bound)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not self.check or scope["type"] != "http" or scope["path"] in HEALTH_PATHS \
                or _local_host(scope):
            await self.app(scope, receive, send)
            return
        response = _json(400, json.dumps({
            "error_code": "BAD_REQUEST",
            "message": "this scoring server answers requests to localhost or a loopback "
                       "address only (DNS rebinding); use http://127.0.0.1:PORT"}).encode())
        await response(scope, receive, send)


def _local_host(scope: Any) -> bool:
    header = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"),
                  "")
    name = header.rsplit(":", 1)[0] if not header.startswith("[") else header[1:].split("]")[0]
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
