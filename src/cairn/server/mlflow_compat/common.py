"""What every MLflow-compatible route shares: reading a request the way the mlflow client
sends it (GET: query parameters; POST/PATCH/DELETE: a JSON body), answering MLflow's
error JSON with the statuses its client relies on, and the URIs the client is given.

MLflow's error codes, not Cairn's: the client branches on them (RESOURCE_ALREADY_EXISTS
lets `register_model` add a version to an existing model, RESOURCE_DOES_NOT_EXIST makes
`get_experiment_by_name` answer None, ENDPOINT_NOT_FOUND makes it fall back), and it
retries 5xx answers for minutes — so nothing the user can fix is ever a 5xx.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from fastapi import Request, Response
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from cairn import errors

if TYPE_CHECKING:
    from cairn.server.state import ServerState
    from cairn.tracking.backend import Backend

API = "/api/2.0/mlflow"
AJAX = "/ajax-api/2.0/mlflow"  # the MLflow UI's spelling of the same routes
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
ARTIFACTS_SCHEME = "mlflow-artifacts:/"
HIDDEN_TAG_PREFIX = "cairn.mlflow."  # bookkeeping this layer keeps in tags, never shown
INT64 = 1 << 63


class MlflowError(errors.CairnError):
    """An answer in MLflow's terms: its error code and the HTTP status its client expects."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.status = code, status


def not_implemented(what: str, why: str) -> MlflowError:
    return MlflowError("NOT_IMPLEMENTED", f"{what} is not supported by Cairn's MLflow-"
                                          f"compatible API: {why}", 501)


def already_exists(message: str) -> MlflowError:
    return MlflowError("RESOURCE_ALREADY_EXISTS", message, 400)


def invalid(message: str) -> MlflowError:
    return MlflowError("INVALID_PARAMETER_VALUE", message, 400)


# The server's one error table (cairn.server.errors), in MLflow's codes where they differ.
MLFLOW_CODES = {"GATE_REFUSED": "INVALID_STATE", "APPROVAL_PENDING": "INVALID_STATE",
                "INVALID_STATE": "INVALID_PARAMETER_VALUE",
                "BAD_REQUEST": "INVALID_PARAMETER_VALUE"}


def status_of(error: errors.CairnError) -> tuple[int, str]:
    """MLflow's (status, error code) for a Cairn error."""
    if isinstance(error, MlflowError):
        return error.status, error.code
    from cairn.server.errors import status_of as cairn_status

    status, code = cairn_status(error)
    return status, MLFLOW_CODES.get(code, code)


def message_of(error: errors.CairnError) -> str:
    text = str(error)
    if isinstance(error, errors.GateRefused):  # the whole verdict table, one row a rule
        rows = [f"  {'PASS' if v.passed else 'FAIL'}  {v.rule}: expected {v.expected}, "
                f"got {v.actual}" for v in error.verdicts]
        text += "\n" + "\n".join(rows)
    return text


def error_response(error: errors.CairnError) -> Response:
    from fastapi.responses import JSONResponse

    from cairn.server import errors as server_errors

    status, code = status_of(error)
    body: dict[str, Any] = {"error_code": code, "message": message_of(error)}
    details = server_errors.body_of(error).get("details")
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=status)


# -- reading requests ------------------------------------------------------------------

class Params:
    """A request's fields: a JSON body, or query parameters (lists as repeated keys)."""

    def __init__(self, data: Mapping[str, Any], lists: Mapping[str, list[str]] | None = None
                 ) -> None:
        self.data, self.lists = data, lists

    def has(self, key: str) -> bool:
        return self.data.get(key) not in (None, "")

    def text(self, key: str, default: str | None = None, *, alias: str | None = None) -> str:
        value = self.data.get(key)
        if value in (None, "") and alias is not None:
            value = self.data.get(alias)
        if value in (None, ""):
            if default is None:
                raise invalid(f"missing value for required parameter '{key}'")
            return default
        if isinstance(value, (dict, list)):
            raise invalid(f"parameter '{key}' must be a string, not {type(value).__name__}")
        return value if isinstance(value, str) else str(value)

    def opt(self, key: str, *, alias: str | None = None) -> str | None:
        return self.text(key, alias=alias) if self.has(key) or (
            alias is not None and self.has(alias)) else None

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.data.get(key)
        if value in (None, ""):
            if default is None:
                raise invalid(f"missing value for required parameter '{key}'")
            return default
        try:
            number = int(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: 1e999 is infinity
            raise invalid(f"parameter '{key}' must be an integer, got {value!r}") from None
        if not -INT64 <= number < INT64:  # what the database stores
            raise invalid(f"parameter '{key}' is out of range (a 64-bit integer), got {number}")
        return number

    def opt_integer(self, key: str) -> int | None:
        return self.integer(key) if self.has(key) else None

    def real(self, key: str) -> float:
        value = self.data.get(key)
        try:
            return float(value if isinstance(value, (int, float, str)) else "")
        except ValueError:  # float() reads "NaN" and "Infinity", as proto JSON spells them
            raise invalid(f"parameter '{key}' must be a number, got {value!r}") from None

    def flag(self, key: str) -> bool:
        value = self.data.get(key)
        return value is True or (isinstance(value, str) and value.lower() == "true")

    def items(self, key: str) -> list[Any]:
        if self.lists is not None:
            return list(self.lists.get(key, []))
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise invalid(f"parameter '{key}' must be a list")
        return value

    def pairs(self, key: str) -> dict[str, str]:
        """[{"key": k, "value": v}, …] as a dict (tags, params)."""
        found: dict[str, str] = {}
        for item in self.items(key):
            if not isinstance(item, dict) or not isinstance(item.get("key"), str):
                raise invalid(f"each entry of '{key}' needs a 'key' and a 'value'")
            found[item["key"]] = "" if item.get("value") is None else str(item["value"])
        return found


async def read_params(request: Request) -> Params:
    if request.method == "GET":
        query = request.query_params
        return Params(dict(query), {k: query.getlist(k) for k in query})
    raw = await request.body()
    if not raw.strip():
        return Params({})
    import json

    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # nesting deeper than the parser's stack, too
        raise invalid("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    if _SURROGATE.search(raw) and _has_lone_surrogate(body):
        raise invalid("the request body has a string with a lone UTF-16 surrogate "
                      "(\\ud800-\\udfff), which is not text")
    return Params(body)


# The rare bodies worth a closer look: a surrogate escaped, or in UTF-8 bytes (which
# json.loads decodes with "surrogatepass").
_SURROGATE = re.compile(rb"\\[uU][dD][89a-fA-F]|\xed[\xa0-\xbf]")


def _has_lone_surrogate(body: Any) -> bool:
    import json

    try:
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return True
    return False


Handler = Callable[["ServerState", Params], dict[str, Any]]
Endpoint = Callable[[Request], Awaitable[Response]]


def endpoint_of(handler: Handler) -> Endpoint:
    """`handler(state, params)` as an endpoint: it runs in the thread pool (the store
    blocks) and its Cairn errors answer in MLflow's terms."""
    from starlette.concurrency import run_in_threadpool

    from cairn.server.app import state_of

    async def endpoint(request: Request) -> Response:
        from fastapi.responses import JSONResponse

        try:
            read = await read_params(request)
            params = Params({**read.data, **request.path_params}, read.lists)
            result = await run_in_threadpool(handler, state_of(request), params)
        except errors.CairnError as error:
            return error_response(error)
        except OverflowError:  # an id given as text, too large for the database's integer
            return error_response(invalid("a number in the request is out of range (ids, "
                                          "versions and timestamps are 64-bit integers)"))
        return JSONResponse(result)

    return endpoint


class RouteTable(BaseRoute):
    """The JSON routes of the MLflow API as one route of the app: a dict lookup by method
    and path (a regex only for the few with path parameters), under API and its /ajax-api
    alias. Matching ~100 routes one by one cost more than a registry read does."""

    def __init__(self, routes: Iterable[tuple[str, str, Handler]]) -> None:
        from starlette.routing import compile_path

        self.exact: dict[tuple[str, str], Endpoint] = {}
        self.templated: list[tuple[str, re.Pattern[str], Endpoint]] = []
        for method, path, handler in routes:
            if "{" in path:
                self.templated.append((method, compile_path(path)[0], endpoint_of(handler)))
            else:
                self.exact[(method, path)] = endpoint_of(handler)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        path, method = scope["path"], scope["method"]
        for prefix in (API, AJAX):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix):]
            found = self.exact.get((method, rest))
            if found is not None:
                return Match.FULL, {"endpoint": found, "path_params": {}}
            for wanted, pattern, endpoint in self.templated:
                hit = pattern.match(rest) if wanted == method else None
                if hit is not None:
                    return Match.FULL, {"endpoint": endpoint, "path_params": hit.groupdict()}
        return Match.NONE, {}  # the catch-all route answers ENDPOINT_NOT_FOUND

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await scope["endpoint"](Request(scope, receive))
        await response(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        from starlette.routing import NoMatchFound

        raise NoMatchFound(name, path_params)


def answering(fn: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """Answer a route's Cairn errors in MLflow's terms (for routes outside the RouteTable)."""
    import functools

    @functools.wraps(fn)
    async def wrapped(*args: Any, **kwargs: Any) -> Response:
        try:
            return await fn(*args, **kwargs)
        except errors.CairnError as error:
            return error_response(error)

    return wrapped


# -- what answers contain ----------------------------------------------------------------

def number(value: float) -> float | str:
    """A float as proto JSON carries it (JSON has no NaN or infinity)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def pairs(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in sorted(tags.items())
            if not k.startswith(HIDDEN_TAG_PREFIX)]


def run_artifact_uri(experiment_id: str, run_id: str) -> str:
    """Where the client uploads a run's artifacts: through this server's artifact routes."""
    return f"{ARTIFACTS_SCHEME}{experiment_id}/{run_id}/artifacts"


def backend(state: ServerState) -> Backend:
    """The registry's view of this server: its store, and its artifact store as the
    object database (model versions name digests stored there)."""
    from cairn.tracking.backend import Backend

    return Backend(state.config.backend_store_uri, state.store, state.artifacts, None)
