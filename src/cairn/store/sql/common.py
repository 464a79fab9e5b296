"""Small pieces both halves of the SQL store use: clocks, upserts, chunking, names."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import JSON, Connection, Row, Table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from cairn.errors import UserError
from cairn.store.search import decode_page_token, encode_page_token

T = TypeVar("T")
CHUNK = 500  # ids per IN (…): far below SQLite's and PostgreSQL's parameter limits
MAX_KEY = 250

_ADJECTIVES = (
    "amber", "bold", "brave", "bright", "calm", "clever", "crisp", "dapper", "eager", "fair",
    "gentle", "glad", "golden", "grand", "honest", "keen", "kind", "lively", "lucky", "merry",
    "misty", "noble", "polite", "proud", "quick", "quiet", "rare", "silent", "sleek", "smart",
    "sunny", "swift", "tidy", "vast", "warm", "wise", "witty", "zesty",
)
_NOUNS = (
    "ant", "badger", "bear", "bird", "cairn", "carp", "cat", "crane", "deer", "dove", "eagle",
    "elk", "fawn", "finch", "fox", "frog", "goat", "hare", "hawk", "heron", "horse", "lark",
    "lynx", "mole", "moth", "newt", "otter", "owl", "panda", "quail", "robin", "seal", "shrew",
    "sloth", "snail", "stag", "swan", "toad", "trout", "wolf", "wren",
)


def now_ms() -> int:
    return int(time.time() * 1000)


def run_name() -> str:
    """A readable name like MLflow's: adjective-noun-NNN."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(0, 999):03d}"


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
           keys: Sequence[str], update: Iterable[str],
           only_if: Callable[[Any], Any] | None = None) -> None:
    """Insert `rows`, updating `update` columns of rows whose `keys` exist (one executemany).

    `only_if(excluded)` limits the update to rows where it holds (ON CONFLICT … WHERE).
    """
    if not rows:
        return
    stmt = dialect_insert(conn, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={c: stmt.excluded[c] for c in update},
        where=only_if(stmt.excluded) if only_if is not None else None)
    conn.execute(stmt, list(rows))


_COMPILED: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}


def execute_many(conn: Connection, name: str, build: Callable[[Connection], Any],
                 rows: Sequence[dict[str, Any]]) -> None:
    """Run the statement `build` makes once for every row, in one round trip.

    PostgreSQL: SQLAlchemy's insertmanyvalues (one multi-row INSERT per ~1000 rows).
    SQLite (no network): one DBAPI executemany of the statement compiled once and cached
    under `name`, which skips SQLAlchemy's per-row parameter processing — on the hot
    path (metric rows) that costs more than SQLite's own work. Values stay bound
    parameters; they must be plain Python values the driver accepts.
    """
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(build(conn), list(rows))
        return
    key = (name, conn.dialect.name)
    if key not in _COMPILED:
        compiled = build(conn).compile(dialect=conn.dialect)
        _COMPILED[key] = (compiled.string, tuple(compiled.positiontup or ()))
    sql, order = _COMPILED[key]
    conn.exec_driver_sql(sql, [tuple(row[k] for k in order) for row in rows])


def dialect_insert(conn: Connection, table: Table) -> Any:
    """INSERT with ON CONFLICT support, for the connection's database."""
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    from sqlalchemy.dialects.postgresql import insert as postgresql_insert

    return postgresql_insert(table)


def check_key(kind: str, key: object) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY:
        raise UserError(f"invalid {kind} key {key!r}: use a non-empty string of at most "
                        f"{MAX_KEY} characters")
    return key


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching strings that start with `prefix` (escape char '\\')."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def page(conn: Connection, query: Any, max_results: int, page_token: str | None
         ) -> tuple[list[Row[Any]], str | None]:
    """One page of `query`'s rows and the token of the next page (None on the last)."""
    offset = decode_page_token(page_token)
    rows = list(conn.execute(query.offset(offset).limit(max_results + 1)).all())
    if len(rows) > max_results:
        return rows[:max_results], encode_page_token(offset + max_results)
    return rows, None


# -- JSON aggregates: a row's children (tags, aliases) in the row's own statement ----------

class json_list(FunctionElement[Any]):  # lower case, as SQL functions are named
    """The aggregate of one column as a JSON array, or of several as an array of arrays;
    NULL or [] over no rows (PostgreSQL's json_agg gives NULL)."""

    type = JSON()
    inherit_cache = True
    name = "json_list"


@compiles(json_list, "sqlite")
def _json_list_sqlite(element: json_list, compiler: SQLCompiler, **kw: Any) -> str:
    return _json_list(element, compiler, "json_group_array", "json_array", **kw)


@compiles(json_list, "postgresql")
def _json_list_postgresql(element: json_list, compiler: SQLCompiler, **kw: Any) -> str:
    return _json_list(element, compiler, "json_agg", "json_build_array", **kw)


def _json_list(element: json_list, compiler: SQLCompiler, aggregate: str, array: str,
               **kw: Any) -> str:
    columns = compiler.process(element.clauses, **kw)
    return f"{aggregate}({columns})" if len(element.clauses) == 1 \
        else f"{aggregate}({array}({columns}))"
