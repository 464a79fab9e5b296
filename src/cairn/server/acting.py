"""Who each request acts for: the one place the server decides it.

Without `--auth` the server trusts its loopback callers as MLflow's does: the
`X-Cairn-User` header (the Cairn client sends the user's identity) names the user, else
the server process's own identity. Every route then reads `cairn.identity.current_user()`,
so audit rows and permission checks name the caller, in the API and the MLflow routes
alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cairn.identity import acting_as

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    Scope = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
    Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

USER_HEADER = b"x-cairn-user"
MAX_USER = 256


class ActingUser:
    """ASGI middleware: run the request as the user its caller names."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = claimed_user(scope) if scope["type"] == "http" else None
        if user is None:
            await self.app(scope, receive, send)
            return
        with acting_as(user):
            await self.app(scope, receive, send)


def claimed_user(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == USER_HEADER:
            text = value.decode("utf-8", "replace").strip()
            return text[:MAX_USER] if text and text.isprintable() else None
    return None
