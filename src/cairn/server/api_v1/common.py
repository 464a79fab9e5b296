"""What every /api/v1 route shares: the store of the process, answers encoded by the
store's wire codec (`cairn.store.wire`, so the client decodes exactly what is sent),
and who the request acts for."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict

from cairn.identity import current_user
from cairn.server.app import state_of
from cairn.store import wire
from cairn.store.base import MetadataStore
from cairn.tracking.backend import Backend

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a search; pass `next_page_token` back as `page_token` for the next."""

    model_config = ConfigDict(ser_json_inf_nan="strings")
    items: list[T]
    next_page_token: str | None = None


def store_of(request: Request) -> MetadataStore:
    return state_of(request).store


def backend_of(request: Request) -> Backend:
    """The registry's view of this server: its store, and its artifact store as the
    object database (versions name digests stored there)."""
    state = state_of(request)
    return Backend(state.config.backend_store_uri, state.store, state.artifacts, None)


def answer(kind: Any, value: Any, status: int = 200) -> Response:
    return Response(wire.dump(kind, value), status_code=status, media_type=wire.JSON)


def page(kind: Any, items: Any) -> Response:
    """A `Page` of `kind`, from a PagedList (its token names the next page)."""
    import json

    token = json.dumps(getattr(items, "token", None)).encode()
    body = b'{"items":' + wire.dump(list[kind], list(items)) + b',"next_page_token":' + token
    return Response(body + b"}", media_type=wire.JSON)


def done() -> Response:
    return Response(b"{}", media_type=wire.JSON)


def acting(request: Request, claimed: str | None = None) -> str:
    """The user a write is recorded for: with auth, always the authenticated one;
    without, the `user_id` the (trusted, loopback) client put in the body — even ""
    (no one), as the store takes it — else the user the request acts for."""
    if getattr(state_of(request).config, "auth", False) or claimed is None:
        return current_user()
    return claimed
