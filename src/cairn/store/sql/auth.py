"""The server's users, API tokens and experiment permissions (`cairn server --auth`).

Kept apart from `MetadataStore`: only the server and `cairn server users|tokens|grant`
read them, on the same database. A token is `cairn_` and 43 random URL-safe characters
(256 bits), shown once; the database keeps its SHA-256, which is enough for a secret
that cannot be guessed (a slow KDF protects low-entropy passwords, not random keys).
Passwords, for HTTP basic, are kept as scrypt hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Row, select

from cairn.errors import ConflictError, NotFoundError, UserError
from cairn.store.levels import check_level
from cairn.store.sql.common import now_ms
from cairn.store.sql.engine import transaction
from cairn.store.sql.tables import (
    api_tokens,
    experiment_permissions,
    experiments,
    model_permissions,
    runs,
    users,
)

TOKEN_PREFIX = "cairn_"
SHOWN_PREFIX = len(TOKEN_PREFIX) + 6  # what `tokens list` shows of a token
LAST_USED_EVERY_MS = 60_000  # last_used is a hint: one write a minute per token at most
_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}  # ~50 ms and 16 MiB per check
MAX_NAME = 256
RUNS_REMEMBERED = 100_000  # run id → experiment id, per process


@dataclass(frozen=True)
class User:
    name: str
    is_admin: bool
    created_time: int
    has_password: bool


@dataclass(frozen=True)
class Token:
    id: int
    prefix: str
    user: str
    label: str
    created_time: int
    last_used_time: int | None
    revoked_time: int | None


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return "scrypt${n}${r}${p}$".format(**_SCRYPT) + "$".join(
        base64.b64encode(b).decode() for b in (salt, digest))


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        found = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                               r=int(r), p=int(p))
    except ValueError:
        return False
    return hmac.compare_digest(found, base64.b64decode(digest))


def check_user_name(name: str) -> str:
    if not name or name != name.strip() or not name.isprintable() or len(name) > MAX_NAME \
            or name == "*" or ":" in name:
        raise UserError(f"user name {name!r} is not valid: printable, no surrounding spaces, "
                        f"no ':' (HTTP basic separates it), not '*', at most {MAX_NAME} "
                        "characters")
    return name


class AuthStore:
    """Users, tokens and experiment grants on one engine (the SqlStore's)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._run_experiments: dict[str, str] = {}

    # -- users -----------------------------------------------------------------------

    def add_user(self, name: str, admin: bool = False, password: str | None = None) -> User:
        check_user_name(name)
        hashed = hash_password(password) if password else None
        with transaction(self._engine, write=True, durable=True) as conn:
            if conn.execute(select(users.c.name).where(users.c.name == name)).first():
                raise ConflictError(f"user '{name}' already exists")
            now = now_ms()
            conn.execute(users.insert(), {"name": name, "is_admin": admin,
                                          "password_hash": hashed, "created_time": now})
            return User(name, admin, now, hashed is not None)

    def get_user(self, name: str) -> User | None:
        with transaction(self._engine, write=False) as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        return None if row is None else User(row.name, bool(row.is_admin), row.created_time,
                                             row.password_hash is not None)

    def require_user(self, name: str) -> User:
        found = self.get_user(name)
        if found is None:
            raise NotFoundError(f"no user '{name}' (`cairn server users list` lists them)")
        return found

    def list_users(self) -> list[User]:
        with transaction(self._engine, write=False) as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).all()
        return [User(r.name, bool(r.is_admin), r.created_time, r.password_hash is not None)
                for r in rows]

    def remove_user(self, name: str) -> None:
        """Remove a user, their tokens and their grants: a later user of the same name
        starts with nothing."""
        with transaction(self._engine, write=True, durable=True) as conn:
            conn.execute(api_tokens.delete().where(api_tokens.c.user_name == name))
            if conn.execute(users.delete().where(users.c.name == name)).rowcount == 0:
                raise NotFoundError(f"no user '{name}' (`cairn server users list` lists them)")
            conn.execute(experiment_permissions.delete().where(
                experiment_permissions.c.user_id == name))
            conn.execute(model_permissions.delete().where(model_permissions.c.user_id == name))

    def password_of(self, name: str) -> tuple[User, str] | None:
        """The user and their password's scrypt hash, if they have a password."""
        with transaction(self._engine, write=False) as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        if row is None or row.password_hash is None:
            return None
        return User(row.name, bool(row.is_admin), row.created_time, True), row.password_hash

    # -- tokens ----------------------------------------------------------------------

    def create_token(self, user: str, label: str = "") -> tuple[Token, str]:
        """A new token for `user`: (its record, the secret — never stored, shown once)."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with transaction(self._engine, write=True, durable=True) as conn:
            if not conn.execute(select(users.c.name).where(users.c.name == user)).first():
                raise NotFoundError(f"no user '{user}' (`cairn server users add {user}`)")
            now = now_ms()
            token_id = conn.execute(api_tokens.insert().returning(api_tokens.c.id), {
                "token_hash": token_hash(secret), "prefix": secret[:SHOWN_PREFIX],
                "user_name": user, "label": label, "created_time": now,
                "last_used_time": None, "revoked_time": None}).scalar_one()
        return Token(int(token_id), secret[:SHOWN_PREFIX], user, label, now, None, None), \
            secret

    def list_tokens(self, user: str | None = None) -> list[Token]:
        query = select(api_tokens).order_by(api_tokens.c.id)
        if user is not None:
            query = query.where(api_tokens.c.user_name == user)
        with transaction(self._engine, write=False) as conn:
            return [_token(r) for r in conn.execute(query).all()]

    def revoke_token(self, token_id: int) -> Token:
        with transaction(self._engine, write=True, durable=True) as conn:
            t = api_tokens
            row = conn.execute(select(t).where(t.c.id == int(token_id))).first()
            if row is None:
                raise NotFoundError(f"no token {token_id} (`cairn server tokens list`)")
            if row.revoked_time is None:
                conn.execute(t.update().where(t.c.id == row.id).values(revoked_time=now_ms()))
            return _token(conn.execute(select(t).where(t.c.id == row.id)).one())

    def authenticate(self, secret: str) -> User | None:
        """The user a token that is live now belongs to (one indexed read; revocation
        counts at once, on every server process), else None."""
        t = api_tokens
        with transaction(self._engine, write=False) as conn:
            row = conn.execute(
                select(t.c.id, t.c.last_used_time, users.c.name, users.c.is_admin,
                       users.c.created_time, users.c.password_hash)
                .join(users, users.c.name == t.c.user_name)
                .where(t.c.token_hash == token_hash(secret), t.c.revoked_time.is_(None))
            ).first()
        if row is None:
            return None
        now = now_ms()
        if row.last_used_time is None or now - row.last_used_time > LAST_USED_EVERY_MS:
            with transaction(self._engine, write=True) as conn:
                conn.execute(t.update().where(t.c.id == row.id).values(last_used_time=now))
        return User(row.name, bool(row.is_admin), row.created_time,
                    row.password_hash is not None)

    # -- experiment permissions ----------------------------------------------------------

    def experiment_permissions(self, experiment_id: str) -> dict[str, str]:
        """user id ("*": everyone else) → READ, EDIT or MANAGE on the experiment."""
        p = experiment_permissions
        number = _experiment_number(experiment_id)
        if number is None:
            return {}
        with transaction(self._engine, write=False) as conn:
            return dict(conn.execute(select(p.c.user_id, p.c.level)
                                     .where(p.c.experiment_id == number)).all())

    def set_experiment_permission(self, experiment_id: str, user_id: str,
                                  level: str | None) -> None:
        """Grant `level` to `user_id` ("*": everyone else) on the experiment; None revokes."""
        p = experiment_permissions
        number = _experiment_number(experiment_id)
        level = None if level is None else check_level(level)
        with transaction(self._engine, write=True, durable=True) as conn:
            if number is None or not conn.execute(select(experiments.c.experiment_id).where(
                    experiments.c.experiment_id == number)).first():
                raise NotFoundError(f"no experiment with id {experiment_id!r}")
            where = (p.c.experiment_id == number, p.c.user_id == user_id)
            conn.execute(p.delete().where(*where))
            if level is not None:
                conn.execute(p.insert(), {"experiment_id": number, "user_id": user_id,
                                          "level": level})

    def experiment_of_run(self, run_id: str) -> str | None:
        """The run's experiment (remembered: a run never moves to another one)."""
        key = str(run_id)
        if key in self._run_experiments:
            return self._run_experiments[key]
        with transaction(self._engine, write=False) as conn:
            found = conn.execute(select(runs.c.experiment_id)
                                 .where(runs.c.run_id == key)).scalar()
        if found is None:
            return None
        if len(self._run_experiments) >= RUNS_REMEMBERED:
            self._run_experiments.clear()
        self._run_experiments[key] = str(found)
        return str(found)


def _experiment_number(experiment_id: str) -> int | None:
    try:
        return int(experiment_id)
    except (TypeError, ValueError):
        return None


def _token(r: Row[Any]) -> Token:
    return Token(int(r.id), r.prefix, r.user_name, r.label, r.created_time, r.last_used_time,
                 r.revoked_time)
