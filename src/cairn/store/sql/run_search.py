"""The SELECT behind search_runs, shaped so the database can use its indices.

A metric compared in a top-level AND of the filter (`metrics.f1 > 0.9 AND …`) becomes an
inner join on latest_metrics, whose (key, value) index then yields the matching runs
already in order when the search also orders by that metric: the top 100 of thousands
of runs without a sort of them all. Everything else (OR, params, tags, attributes) is
an EXISTS test; ordering by a metric, param or tag nobody filtered on is an outer join,
with runs lacking it last in either direction.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, and_, select

from cairn.store.search import Comparison, parse_filter, parse_order_by
from cairn.store.sql import filters
from cairn.store.sql.tables import latest_metrics, params, runs, tags

_VALUES = {"metric": latest_metrics, "param": params, "tag": tags}


def run_query(filter_string: str | None, order_by: Sequence[str] | None,
              target: filters.Target) -> Select[Any]:
    """SELECT runs.* matching `filter_string`, ordered by `order_by` then newest first."""
    joined: dict[str, Any] = {}  # metric key -> inner-joined alias of latest_metrics
    source: Any = runs
    conditions = []
    for part in filters.conjuncts(parse_filter(filter_string)):
        if isinstance(part, Comparison) and part.entity == "metric":
            if part.key not in joined:
                joined[part.key] = alias = _alias("metric", f"m{len(joined)}")
                source = source.join(alias, and_(alias.c.run_id == runs.c.run_id,
                                                 alias.c.key == part.key,
                                                 alias.c.is_nan.is_(False)))
            conditions.append(filters.compare(joined[part.key].c.value, part.op, part.value))
        else:
            conditions.append(filters.condition(part, target, filter_string or ""))
    ordering: list[Any] = []
    clauses = tuple(order_by or ())
    for n, (clause, item) in enumerate(zip(clauses, parse_order_by(clauses), strict=True)):
        if item.entity == "metric" and item.key in joined:
            column = joined[item.key].c.value  # inner join: never missing
        elif item.entity in _VALUES:
            alias = _alias(item.entity, f"o{n}")
            on = [alias.c.run_id == runs.c.run_id, alias.c.key == item.key]
            if item.entity == "metric":
                on.append(alias.c.is_nan.is_(False))  # NaN sorts with the missing
            source = source.outerjoin(alias, and_(*on))
            column = alias.c.value
            ordering.append(column.is_(None))
        else:
            column = filters.order_column(item, target, clause)
            if getattr(column, "nullable", True):  # NOT NULL columns keep their index order
                ordering.append(column.is_(None))
        ordering.append(column.asc() if item.ascending else column.desc())
    query = select(runs).select_from(source).where(*conditions)
    return query.order_by(*ordering, runs.c.start_time.desc(), runs.c.run_id)


@functools.cache
def _alias(entity: str, name: str) -> Any:
    """An alias of the metric/param/tag table, built once: building one costs ~1 ms."""
    return _VALUES[entity].alias(name)
