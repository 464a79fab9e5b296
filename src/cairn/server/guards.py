"""What every request must satisfy before a route sees it: one ASGI middleware a rule,
each answering a refusal as the server's error JSON (`{"error_code", "message"}`).

    TrustedHost  the Host header names this server, so a page whose own name has been
                 re-pointed at 127.0.0.1 (DNS rebinding) cannot read or write through
                 the browser: 400 BAD_REQUEST
    JsonBodies   a mutating request carries no body a cross-site page can send without a
                 CORS preflight (a form's types, text/plain, or no Content-Type at all):
                 415 BAD_REQUEST
    BodyLimit    a request body is at most `max_json_body` bytes, counted as it arrives
                 (a longer one is refused before the rest is read): 413
                 RESOURCE_LIMIT_EXCEEDED

Artifact uploads (a PUT under the artifact routes) are raw bytes of any type and size,
streamed to disk: they pass the last two. A browser never sends a cross-site PUT without
a preflight, and this server grants none, so exempting them opens nothing.
Malformed JSON is the routes' to refuse (400, at their one reader of request bodies).
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from cairn.commands.server import ServerConfig, is_loopback

if TYPE_CHECKING:
    from fastapi import FastAPI

    from cairn.server.acting import ASGIApp, Receive, Scope, Send

log = logging.getLogger("cairn.server")

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Routes whose PUT body is raw bytes of any size, streamed to disk and hashed.
RAW_BODY_PREFIXES = ("/api/2.0/mlflow-artifacts/", "/ajax-api/2.0/mlflow-artifacts/",
                     "/api/v1/objects/")
HOST_EXEMPT = frozenset({"/health", "/version"})  # load balancers probe by address
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})
# The types a <form> or a no-cors fetch() may send cross-site with no preflight.
SIMPLE_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data",
                          "text/plain"})


def install(app: FastAPI, config: ServerConfig) -> None:
    """Add the guards, the Host check outermost (nothing else runs for a foreign host)."""
    app.add_middleware(BodyLimit, limit=config.max_json_body)
    app.add_middleware(JsonBodies)
    app.add_middleware(TrustedHost, hosts=AllowedHosts(config.host, config.allowed_hosts))


# -- Host --------------------------------------------------------------------------------

@dataclass(frozen=True)
class AllowedHosts:
    """The Host names a server bound to `bound` answers: that address; localhost and the
    loopback addresses when it listens on them; any IP address when it listens on every
    interface (an address cannot be re-pointed by DNS); and the `patterns` it is given
    (fnmatch, matched against the name and against name:port; "*" allows any)."""

    bound: str
    patterns: tuple[str, ...] = ()

    def allows(self, header: str) -> bool:
        name = host_name(header)
        if name is None:
            return False
        if "*" in self.patterns or any(fnmatchcase(name, p) or fnmatchcase(header.lower(), p)
                                       for p in self.patterns):
            return True
        bound = self.bound.strip("[]").lower()
        if name == bound:
            return True
        address = _address(name)
        everywhere = bound in WILDCARD_BINDS
        if (everywhere or is_loopback(bound)) and (
                name == "localhost" or (address is not None and address.is_loopback)):
            return True
        return everywhere and address is not None


def host_name(header: str) -> str | None:
    """The host of a Host header, lowercased, without its port (None if malformed)."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        name, rest = (header[1:end], header[end + 1:]) if end > 0 else ("", "")
    else:
        name, colon, port = header.partition(":")
        rest = colon + port
    if rest and not (rest.startswith(":") and rest[1:].isdigit()):
        return None
    return name or None


def _address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


class TrustedHost:
    def __init__(self, app: ASGIApp, hosts: AllowedHosts) -> None:
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in HOST_EXEMPT:
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"host")
        if header is not None and self.hosts.allows(header):
            await self.app(scope, receive, send)
            return
        log.warning("refused a request with Host %r", header)
        name = host_name(header or "") or "NAME"
        given = "a request without a Host header" if header is None else f"Host {header!r}"
        await refuse(send, 400, "BAD_REQUEST",
                     f"{given} is not this server's name (a page reaching it by another "
                     f"name is refused: DNS rebinding); use {self._usual()}, or start the "
                     f"server with --allowed-hosts {name}")

    def _usual(self) -> str:
        bound = self.hosts.bound
        if bound in WILDCARD_BINDS:
            return "its IP address or localhost"
        return f"{bound} or localhost" if is_loopback(bound) and bound != "localhost" \
            else bound


# -- Content-Type ------------------------------------------------------------------------

class JsonBodies:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING or raw_body(scope):
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"content-type")
        media = (given or "").split(";", 1)[0].strip().lower()
        if media in SIMPLE_TYPES:
            problem = f"with Content-Type {media}, which a page on any site can send"
        elif given is None and _has_body(scope):
            problem = "with a body but no Content-Type, which a page on any site can send"
        else:
            await self.app(scope, receive, send)
            return
        await refuse(send, 415, "BAD_REQUEST",
                     f"{scope['method']} {scope['path']} refused: a request {problem}; "
                     "send the body as JSON with Content-Type: application/json")


def raw_body(scope: Scope) -> bool:
    """An artifact upload: raw bytes, streamed to disk."""
    return scope["method"] == "PUT" and str(scope["path"]).startswith(RAW_BODY_PREFIXES)


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    return _header(scope, b"transfer-encoding") is not None or (
        length is not None and length.strip() not in ("", "0"))


# -- size --------------------------------------------------------------------------------

class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or raw_body(scope):
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.limit:
            await self._refuse(send)
            return
        seen, started, refused = 0, False, False

        async def counting() -> Any:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    if not started:
                        await self._refuse(send)
                    refused = True
                    return {"type": "http.disconnect"}  # the route stops reading here
            return message

        async def sending(message: Any) -> None:
            nonlocal started
            if refused:
                return  # the route's answer to the cut-off body: the 413 went instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, sending)
        except Exception:
            if not refused:
                raise  # a route that fails on the cut-off body: already answered 413

    async def _refuse(self, send: Send) -> None:
        await refuse(send, 413, "RESOURCE_LIMIT_EXCEEDED",
                     f"the request body is over {self.limit} bytes, this server's limit "
                     "for API requests (artifacts are uploaded with PUT to "
                     "/api/2.0/mlflow-artifacts/artifacts/…, which has none)")


# -- answers -----------------------------------------------------------------------------

async def refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error_code": code, "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", ())
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None
