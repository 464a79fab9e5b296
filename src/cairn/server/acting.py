"""Who each request acts for: the one place the server decides it.

Without `--auth` the server trusts its loopback callers as MLflow's does: the
`X-Cairn-User` header (the Cairn client sends the user's identity) names the user, else
the server process's own identity.

With `--auth` every request but /health and /version must authenticate, as the mlflow
client does: `Authorization: Bearer <token>` (MLFLOW_TRACKING_TOKEN), or HTTP basic
(MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD) with the user's name and either
one of their tokens or their password. Anything else is a 401; X-Cairn-User is ignored.
The token is looked up in the database on every request, so one revoked is refused at
once by every server process. The user is left in the ASGI scope (`authenticated_user`)
for `state_of`, whose store then checks their permissions on every call.

Either way every route then reads `cairn.identity.current_user()`, so audit rows and
permission checks name the caller, in the API and the MLflow routes alike.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from cairn.identity import acting_as

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    from cairn.store.sql.auth import AuthStore, User

    Scope = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
    Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

USER_HEADER = b"x-cairn-user"
AUTHORIZATION = b"authorization"
MAX_USER = 256
OPEN_PATHS = frozenset({"/health", "/version"})  # for load balancers' probes
USER_KEY = "cairn.user"  # where the authenticated User waits in the scope
CHALLENGE = b'Bearer realm="cairn", Basic realm="cairn"'
HOW = ("send a token as `Authorization: Bearer <token>` (MLFLOW_TRACKING_TOKEN), or HTTP "
       "basic with your user name and a token or password (MLFLOW_TRACKING_USERNAME and "
       "MLFLOW_TRACKING_PASSWORD); an admin creates them with `cairn server users add` and "
       "`cairn server tokens create`")


class ActingUser:
    """ASGI middleware: run the request as the user it names (no auth) or proves (auth)."""

    def __init__(self, app: ASGIApp, auth: AuthStore | None = None) -> None:
        self.app = app
        self.authenticator = Authenticator(auth) if auth is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.authenticator is not None and scope["type"] in ("http", "websocket"):
            await self._authenticated(self.authenticator, scope, receive, send)
            return
        user = claimed_user(scope) if scope["type"] == "http" else None
        if user is None:
            await self.app(scope, receive, send)
            return
        with acting_as(user):
            await self.app(scope, receive, send)

    async def _authenticated(self, authenticator: Authenticator, scope: Scope,
                             receive: Receive, send: Send) -> None:
        from starlette.concurrency import run_in_threadpool

        if scope["type"] == "http" and scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        user, problem = await run_in_threadpool(authenticator.authenticate,
                                                header(scope, AUTHORIZATION))
        if user is None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            else:
                await refuse(send, problem)
            return
        scope[USER_KEY] = user
        with acting_as(user.name):
            await self.app(scope, receive, send)


def authenticated_user(scope: Scope) -> User | None:
    found: User | None = scope.get(USER_KEY)
    return found


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def claimed_user(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == USER_HEADER:
            text = value.decode("utf-8", "replace").strip()
            return text[:MAX_USER] if text and text.isprintable() else None
    return None


async def refuse(send: Send, problem: str) -> None:
    body = json.dumps({"error_code": "UNAUTHENTICATED", "message": problem}).encode()
    await send({"type": "http.response.start", "status": 401, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", CHALLENGE)]})
    await send({"type": "http.response.body", "body": body})


class Authenticator:
    """Credentials → the user they prove, read from the database each time."""

    CACHE = 1024  # passwords verified lately (scrypt is slow on purpose)

    def __init__(self, auth: AuthStore) -> None:
        self.auth = auth
        self._verified: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def authenticate(self, authorization: str | None) -> tuple[User | None, str]:
        """(the user, "") or (None, why not)."""
        if not authorization:
            return None, f"authentication required: {HOW}"
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            user = self.auth.authenticate(value)
            return (user, "") if user is not None else (None, _bad_token())
        if scheme.lower() == "basic" and value:
            return self._basic(value)
        return None, f"unsupported Authorization header: {HOW}"

    def _basic(self, value: str) -> tuple[User | None, str]:
        from cairn.store.sql.auth import TOKEN_PREFIX, verify_password

        try:
            name, sep, secret = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, "the HTTP basic credentials are not base64 of user:password"
        if not sep or not name or not secret:
            return None, "the HTTP basic credentials need a user name and a password or token"
        if secret.startswith(TOKEN_PREFIX):
            user = self.auth.authenticate(secret)
            if user is None or user.name != name:
                return None, _bad_token(f" for user '{name}'")
            return user, ""
        found = self.auth.password_of(name)
        wrong = "wrong user name or password (or the user has no password: use a token)"
        if found is None:
            return None, wrong
        user, stored = found
        # The stored hash is part of the key: a changed password or a removed user no
        # longer matches what was verified before.
        key = hashlib.sha256(f"{name}\0{secret}\0{stored}".encode()).hexdigest()
        with self._lock:
            if key in self._verified:
                self._verified.move_to_end(key)
                return user, ""
        if not verify_password(secret, stored):
            return None, wrong
        with self._lock:
            self._verified[key] = None
            while len(self._verified) > self.CACHE:
                self._verified.popitem(last=False)
        return user, ""


def _bad_token(whose: str = "") -> str:
    return (f"the token is not valid{whose}: unknown, revoked, or its user was removed; "
            "ask an admin for a new one (`cairn server tokens create`)")
