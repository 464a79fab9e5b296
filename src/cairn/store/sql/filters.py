"""Filter trees and order_by clauses (store/search.py) as SQLAlchemy expressions.

Values are always bound parameters. Metrics, params, tags and aliases become EXISTS
sub-queries on their (owner, key) primary keys, so AND, OR and parentheses compose
without joins multiplying rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_

from cairn.errors import UserError
from cairn.store.search import (
    BoolOp,
    Comparison,
    Filter,
    OrderBy,
    Value,
    parse_filter,
    parse_order_by,
)

Condition = ColumnElement[bool]
# (key, compare) -> condition; `compare` turns the entity's value column into a test.
EntityFilter = Callable[[str, Callable[[Any], Condition]], Condition]


@dataclass
class Target:
    """What a search runs over: its attributes and how metrics/params/tags are found."""

    what: str  # "runs", "model versions", … for messages
    strings: dict[str, Any]  # attribute name -> column holding text
    numbers: dict[str, Any]  # attribute name -> numeric column
    entities: dict[str, EntityFilter] = field(default_factory=dict)  # "metric" -> …
    special: dict[str, Callable[[str, Value], Condition]] = field(default_factory=dict)
    order_entities: dict[str, Callable[[str], Any]] = field(default_factory=dict)

    def attribute_names(self) -> str:
        return ", ".join(sorted({*self.strings, *self.numbers, *self.special}))


def where(text: str | None, target: Target) -> Condition | None:
    """The condition for filter string `text`; None when there is nothing to filter."""
    tree = parse_filter(text)
    if tree is None:
        return None
    return _condition(tree, target, text or "")


def order(clauses: Sequence[str] | None, target: Target) -> list[Any]:
    """ORDER BY expressions; rows without the metric/param/tag sort last either way."""
    result: list[Any] = []
    for clause, item in zip(clauses or (), parse_order_by(tuple(clauses or ())), strict=True):
        column = _order_column(item, target, clause)
        if getattr(column, "nullable", True):  # NULLs last either way, on both databases
            result.append(column.is_(None))
        result.append(column.asc() if item.ascending else column.desc())
    return result


def conjuncts(tree: Filter | None) -> list[Filter]:
    """The parts of a filter joined by top-level ANDs (each must hold)."""
    if tree is None:
        return []
    if isinstance(tree, BoolOp) and tree.op == "AND":
        return list(tree.items)
    return [tree]


def condition(tree: Filter, target: Target, text: str) -> Condition:
    """The condition for a parsed filter (`text` is the whole filter, for messages)."""
    return _condition(tree, target, text)


def order_column(item: OrderBy, target: Target, clause: str) -> Any:
    return _order_column(item, target, clause)


def _condition(tree: Filter, target: Target, text: str) -> Condition:
    if isinstance(tree, BoolOp):
        parts = [_condition(item, target, text) for item in tree.items]
        return and_(*parts) if tree.op == "AND" else or_(*parts)
    return _comparison(tree, target, text)


def _comparison(c: Comparison, target: Target, text: str) -> Condition:
    if c.entity == "attribute":
        return _attribute(c, target, text)
    entity = target.entities.get(c.entity)
    if entity is None:
        raise UserError(f'invalid filter "{text}": {target.what} have no {c.entity}s; '
                        f"filter by {_entity_hint(target)}")
    return entity(c.key, lambda column: compare(column, c.op, c.value))


def _attribute(c: Comparison, target: Target, text: str) -> Condition:
    key = c.key
    if key in target.special:
        return target.special[key](c.op, c.value)
    if key in target.numbers:
        return compare(target.numbers[key], c.op, _numbers(c, text))
    if key in target.strings:
        return compare(target.strings[key], c.op, _strings(c, text))
    raise UserError(f'invalid filter "{text}": unknown attribute \'{key}\' for {target.what}; '
                    f"expected one of: {target.attribute_names()}")


def _numbers(c: Comparison, text: str) -> Value:
    if c.op in ("LIKE", "ILIKE"):
        raise UserError(f'invalid filter "{text}": {c.key} is a number; compare it with '
                        "=, !=, <, <=, >, >=, IN or NOT IN")
    values = c.value if isinstance(c.value, tuple) else (c.value,)
    try:
        numbers = tuple(float(v) for v in values)
    except ValueError:
        raise UserError(f'invalid filter "{text}": {c.key} needs a number, '
                        f"got {c.value!r}") from None
    whole = tuple(int(n) if n.is_integer() else n for n in numbers)
    return whole if isinstance(c.value, tuple) else whole[0]


def _strings(c: Comparison, text: str) -> Value:
    values = c.value if isinstance(c.value, tuple) else (c.value,)
    if any(not isinstance(v, str) for v in values):
        raise UserError(f"invalid filter \"{text}\": {c.key} needs a quoted string, "
                        f"got {c.value!r}")
    if c.op in ("<", "<=", ">", ">="):
        raise UserError(f'invalid filter "{text}": {c.key} is text; compare it with '
                        "=, !=, LIKE, ILIKE, IN or NOT IN")
    return c.value


def compare(column: Any, op: str, value: Value) -> Condition:
    """`column op value` with `value` bound as a parameter."""
    if op in ("IN", "NOT IN"):
        values = list(value) if isinstance(value, tuple) else [value]
        return column.in_(values) if op == "IN" else column.not_in(values)  # type: ignore[no-any-return]
    operations: dict[str, Callable[[Any, Any], Condition]] = {
        "=": lambda a, b: a == b, "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
        "LIKE": lambda a, b: a.like(b), "ILIKE": lambda a, b: a.ilike(b),
    }
    if op not in operations:
        return false()
    return operations[op](column, value)


def _order_column(item: OrderBy, target: Target, clause: str) -> Any:
    if item.entity == "attribute":
        key = item.key
        column = target.numbers.get(key, target.strings.get(key))
        if column is None:
            names = ", ".join(sorted({*target.strings, *target.numbers}))
            raise UserError(f'invalid order_by "{clause}": unknown attribute \'{key}\' for '
                            f"{target.what}; expected one of: {names}")
        return column
    entity = target.order_entities.get(item.entity)
    if entity is None:
        raise UserError(f'invalid order_by "{clause}": {target.what} cannot be ordered by '
                        f"{item.entity}s")
    return entity(item.key)


def _entity_hint(target: Target) -> str:
    prefixes = [f"{e}s.KEY" for e in target.entities]
    return ", ".join([*prefixes, "attributes"])
