"""The one table from Cairn's errors to HTTP answers: 4xx JSON for bad input, never 500.

    {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "…", "details": {…}}

The codes are MLflow's where MLflow has one, so the mlflow client understands them.
Anything not a CairnError is a bug: logged, and answered 500 without its text.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from cairn import errors

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

log = logging.getLogger("cairn.server")

# (error class, HTTP status, error code): the first class the error is an instance of wins
TABLE: list[tuple[type[BaseException], int, str]] = [
    (errors.GateRefused, 409, "GATE_REFUSED"),
    (errors.ApprovalPending, 409, "APPROVAL_PENDING"),
    (errors.PermissionDenied, 403, "PERMISSION_DENIED"),
    (errors.NotFoundError, 404, "RESOURCE_DOES_NOT_EXIST"),
    (errors.ConflictError, 409, "RESOURCE_CONFLICT"),
    (errors.IntegrityError, 400, "INVALID_STATE"),
    (errors.PathError, 400, "INVALID_PARAMETER_VALUE"),
    (errors.UserError, 400, "INVALID_PARAMETER_VALUE"),
    (errors.LockError, 503, "TEMPORARILY_UNAVAILABLE"),
    (errors.DatabaseError, 503, "TEMPORARILY_UNAVAILABLE"),
    (errors.CairnError, 400, "BAD_REQUEST"),
]


def status_of(error: BaseException) -> tuple[int, str]:
    for kind, status, code in TABLE:
        if isinstance(error, kind):
            return status, code
    return 500, "INTERNAL_ERROR"


def body_of(error: BaseException) -> dict[str, Any]:
    code = status_of(error)[1]
    body: dict[str, Any] = {"error_code": code, "message": str(error)}
    if isinstance(error, errors.GateRefused):
        body["details"] = {"verdicts": [_verdict(v) for v in error.verdicts]}
    elif isinstance(error, errors.ApprovalPending) and error.request is not None:
        body["details"] = {"request_id": getattr(error.request, "id", None)}
    return body


def _verdict(v: Any) -> dict[str, Any]:
    return {"rule": v.rule, "expected": v.expected, "actual": v.actual, "passed": v.passed}


def install(app: FastAPI) -> None:
    """Answer every CairnError from the table, and validation errors as 400 JSON."""
    from fastapi.exceptions import RequestValidationError

    async def cairn_error(request: Request, error: Exception) -> JSONResponse:
        return _answer(error)

    async def invalid(request: Request, error: Exception) -> JSONResponse:
        from fastapi.responses import JSONResponse

        problems: list[dict[str, Any]] = list(getattr(error, "errors", list)())
        first = problems[0] if problems else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else \
            str(first.get("msg", "invalid request"))
        return JSONResponse({"error_code": "INVALID_PARAMETER_VALUE", "message": message},
                            status_code=400)

    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        from fastapi.responses import JSONResponse

        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return JSONResponse({"error_code": "INTERNAL_ERROR",
                             "message": "internal error (a bug in Cairn: see the server log)"},
                            status_code=500)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        from fastapi.responses import JSONResponse

        status = int(getattr(error, "status_code", 500))
        code = {404: "ENDPOINT_NOT_FOUND", 405: "ENDPOINT_NOT_FOUND"}.get(status, "BAD_REQUEST")
        where = f"{request.method} {request.url.path}"
        message = (f"no such endpoint: {where} (the API is described at /api/v1/openapi.json)"
                   if code == "ENDPOINT_NOT_FOUND" else f"{where}: {getattr(error, 'detail', '')}")
        return JSONResponse({"error_code": code, "message": message}, status_code=status,
                            headers=getattr(error, "headers", None))

    from starlette.exceptions import HTTPException

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(errors.CairnError, cairn_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, unexpected)


def _answer(error: Exception) -> JSONResponse:
    from fastapi.responses import JSONResponse

    status, _ = status_of(error)
    return JSONResponse(body_of(error), status_code=status)
