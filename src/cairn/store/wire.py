"""The store's values on the wire: JSON for the REST API and its client, one codec.

Both sides use pydantic's validators for the entity dataclasses themselves, so what the
server documents in its OpenAPI document is exactly what the client decodes. Floats
travel as JSON numbers, and NaN and infinities as "NaN", "Infinity", "-Infinity" (JSON
has none; MLflow's proto JSON spells them so). pydantic is imported only when used.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import TypeAdapter

JSON = "application/json"


@functools.cache
def adapter(kind: Any) -> TypeAdapter[Any]:
    from pydantic import ConfigDict, TypeAdapter

    try:
        return TypeAdapter(kind, config=ConfigDict(ser_json_inf_nan="strings"))
    except Exception:  # a type that carries its own config (a pydantic model)
        return TypeAdapter(kind)


def dump(kind: Any, value: Any) -> bytes:
    """`value` (of type `kind`) as JSON bytes."""
    return adapter(kind).dump_json(value)


def to_python(kind: Any, value: Any) -> Any:
    """`value` as JSON-able Python (dicts, lists, str, numbers)."""
    return adapter(kind).dump_python(value, mode="json")


def load(kind: Any, raw: bytes | str) -> Any:
    """JSON bytes as a value of `kind`; pydantic's ValidationError if they are not one."""
    return adapter(kind).validate_json(raw)


def from_python(kind: Any, value: Any) -> Any:
    return adapter(kind).validate_python(value)
