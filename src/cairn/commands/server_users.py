"""What `cairn server users|tokens|grant|revoke` do: manage the users, API tokens and
permissions of a `cairn server --auth`, on its database directly (run them on the server
machine; there is no default password: the first admin is made this way).

Each takes the database URI (`backend_store_uri`, default as `cairn server`'s) and returns
plain data; nothing is printed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cairn.errors import NotFoundError, UserError

if TYPE_CHECKING:
    from cairn.store.base import MetadataStore
    from cairn.store.sql.auth import AuthStore, Token, User

EVERYONE = "*"


@dataclass(frozen=True)
class NewToken:
    token: Token
    secret: str  # shown once: the database keeps only its hash


@contextmanager
def _opened(backend_store_uri: str | None) -> Iterator[tuple[MetadataStore, AuthStore]]:
    from cairn.commands.server import database_uri
    from cairn.store.open import open_store
    from cairn.store.sql.auth import AuthStore
    from cairn.store.sql.store import SqlStore

    store = open_store(database_uri(backend_store_uri))
    try:
        assert isinstance(store, SqlStore)  # database_uri refuses anything else
        yield store, AuthStore(store.engine)
    finally:
        store.close()


# -- users ---------------------------------------------------------------------------------

def add_user(name: str, *, admin: bool = False, password: str | None = None,
             backend_store_uri: str | None = None) -> tuple[User, NewToken]:
    """A new user and their first token."""
    with _opened(backend_store_uri) as (_, auth):
        user = auth.add_user(name, admin, password)
        token, secret = auth.create_token(name, "created with the user")
        return user, NewToken(token, secret)


def list_users(*, backend_store_uri: str | None = None) -> list[User]:
    with _opened(backend_store_uri) as (_, auth):
        return auth.list_users()


def remove_user(name: str, *, backend_store_uri: str | None = None) -> None:
    """Remove a user with their tokens (refused from the next request on) and grants."""
    with _opened(backend_store_uri) as (_, auth):
        auth.remove_user(name)


# -- tokens --------------------------------------------------------------------------------

def create_token(user: str, *, label: str = "",
                 backend_store_uri: str | None = None) -> NewToken:
    with _opened(backend_store_uri) as (_, auth):
        return NewToken(*auth.create_token(user, label))


def list_tokens(*, user: str | None = None,
                backend_store_uri: str | None = None) -> list[Token]:
    with _opened(backend_store_uri) as (_, auth):
        if user is not None:
            auth.require_user(user)
        return auth.list_tokens(user)


def revoke_token(token_id: int, *, backend_store_uri: str | None = None) -> Token:
    """Revoke a token: every server process on this database refuses it from now on."""
    with _opened(backend_store_uri) as (_, auth):
        return auth.revoke_token(token_id)


# -- permissions ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Grant:
    user: str
    level: str | None  # None: revoked
    experiment: str | None = None  # the experiment's id
    model: str | None = None


def grant(user: str, level: str | None, *, experiment: str | None = None,
          model: str | None = None, backend_store_uri: str | None = None) -> Grant:
    """Give `user` ("*": everyone else) `level` on one experiment (its name or id) or one
    registered model; `level` None takes the grant away."""
    from cairn.identity import current_user
    from cairn.store.levels import check_level

    if (experiment is None) == (model is None):
        raise UserError("name one experiment (--experiment) or one model (--model)")
    level = None if level is None else check_level(level)
    with _opened(backend_store_uri) as (store, auth):
        if user != EVERYONE:
            auth.require_user(user)
        if model is not None:
            store.set_permission(model, user, level, current_user())
            return Grant(user, level, model=model)
        assert experiment is not None
        experiment_id = _experiment_id(store, experiment)
        auth.set_experiment_permission(experiment_id, user, level)
        return Grant(user, level, experiment=experiment_id)


def _experiment_id(store: MetadataStore, name_or_id: str) -> str:
    found = store.get_experiment_by_name(name_or_id)
    if found is not None:
        return found.experiment_id
    try:
        return store.get_experiment(name_or_id).experiment_id
    except NotFoundError:
        raise NotFoundError(f"no experiment named or numbered {name_or_id!r}") from None
