"""Templating in pipeline files, as DVC does it: ``${name}`` interpolation from vars and
params.yaml, ``foreach``/``do`` and ``matrix`` expansion.

A string that is exactly one ``${…}`` becomes the value itself (a number stays a number,
a list a list); inside a longer string the value is written out (``true``/``false`` for
booleans, lists space-separated, and in ``cmd`` a mapping as ``--key value`` options).
``\\${`` is a literal ``${``. Errors are `ResolveError`s carrying the key path of the
offending value in the file, so the caller can name the line.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

KeyPath = tuple[str | int, ...]

_REF = re.compile(r"(?<!\\)\$\{\s*([^{}]*?)\s*\}")
_NAME_PART = re.compile(r"([^.\[\]\s]+)|\[\s*(\d+)\s*\]")


class ResolveError(Exception):
    def __init__(self, message: str, keypath: KeyPath) -> None:
        super().__init__(message)
        self.keypath = keypath


def merge(into: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `new` into a copy of `into`; on conflicting leaves `new` wins."""
    merged = dict(into)
    for key, value in new.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, Mapping):
            merged[key] = merge(old, value)
        else:
            merged[key] = value
    return merged


def lookup_var(context: Mapping[str, Any], expression: str) -> Any:
    """``a.b[0].c`` in `context`; KeyError naming the expression if any part is missing."""
    value: Any = context
    pos = 0
    for match in _NAME_PART.finditer(expression):
        between = expression[pos:match.start()].strip()
        if between not in ("", "."):
            raise KeyError(expression)
        pos = match.end()
        name, index = match.group(1), match.group(2)
        key: Any = name if name is not None else int(index)
        value = _step(value, key, expression)
    if pos == 0 or expression[pos:].strip():
        raise KeyError(expression)
    return value


def _step(value: Any, key: Any, expression: str) -> Any:
    if isinstance(value, Mapping):
        if key in value:
            return value[key]
        if isinstance(key, str) and key.lstrip("-").isdigit() and int(key) in value:
            return value[int(key)]
        raise KeyError(expression)
    if isinstance(value, list):
        index = int(key) if isinstance(key, int) or str(key).isdigit() else None
        if index is not None and index < len(value):
            return value[index]
    raise KeyError(expression)


def to_str(value: Any, in_cmd: bool = False) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return " ".join(to_str(v, in_cmd) for v in value)
    if isinstance(value, Mapping):
        if not in_cmd:
            raise TypeError("a mapping can only be written into a string inside cmd")
        return " ".join(_options(value, ""))
    return str(value)


def _options(mapping: Mapping[str, Any], prefix: str) -> list[str]:
    """A mapping in cmd as command-line options (DVC's default: booleans are flags)."""
    parts: list[str] = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            parts += _options(value, f"{name}.")
        elif value is True:
            parts.append(f"--{name}")
        elif value is not False and value is not None:
            parts.append(f"--{name} {to_str(value, True)}")
    return parts


def interpolate_str(text: str, context: Mapping[str, Any], keypath: KeyPath,
                    in_cmd: bool = False) -> Any:
    if "${" not in text:
        return text
    whole = _REF.fullmatch(text)
    if whole is not None:
        return _value(whole.group(1), context, keypath, text)

    def replace(match: re.Match[str]) -> str:
        value = _value(match.group(1), context, keypath, text)
        try:
            return to_str(value, in_cmd)
        except TypeError as e:
            raise ResolveError(f"cannot write ${{{match.group(1)}}} into {text!r}: {e}",
                               keypath) from None

    return _REF.sub(replace, text).replace("\\${", "${")


def _value(expression: str, context: Mapping[str, Any], keypath: KeyPath, text: str) -> Any:
    try:
        return lookup_var(context, expression)
    except KeyError:
        raise ResolveError(f"undefined variable '{expression}' in {text!r}; define it under "
                           "`vars:` or in params.yaml", keypath) from None


def interpolate(value: Any, context: Mapping[str, Any], keypath: KeyPath = (),
                in_cmd: bool = False) -> Any:
    """`value` with every ``${…}`` in its strings (and mapping keys) replaced; `in_cmd`
    for a stage's cmd, where a mapping may be written out as options. A ResolveError's
    key path is `keypath` plus the path inside `value`."""
    try:
        return _interpolate(value, context, in_cmd)
    except ResolveError as e:
        e.keypath = (*keypath, *e.keypath)
        raise


def _interpolate(value: Any, context: Mapping[str, Any], in_cmd: bool) -> Any:
    # the key path is added only on the way out of an error: a good file pays nothing
    if isinstance(value, str):
        return interpolate_str(value, context, (), in_cmd) if "${" in value else value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            try:
                new_key = interpolate_str(k, context, (), in_cmd) if isinstance(k, str) else k
                out[new_key if isinstance(new_key, (str, int, float, bool)) else str(new_key)] \
                    = _interpolate(v, context, in_cmd)
            except ResolveError as e:
                e.keypath = (k, *e.keypath)
                raise
        return out
    if isinstance(value, list):
        items = []
        for i, v in enumerate(value):
            try:
                items.append(_interpolate(v, context, in_cmd))
            except ResolveError as e:
                e.keypath = (i, *e.keypath)
                raise
        return items
    return value


def is_composite(value: Any) -> bool:
    return isinstance(value, (Mapping, list))


def foreach_items(iterable: Any, keypath: KeyPath) -> dict[str, tuple[Any, Any]]:
    """``{name suffix: (key, item)}``: a mapping by its keys; a list of plain values by
    the values themselves, any other list by index (DVC's names)."""
    if isinstance(iterable, Mapping):
        return {to_str(k): (k, v) for k, v in iterable.items()}
    if isinstance(iterable, list):
        if any(is_composite(v) for v in iterable):
            return {str(i): (i, v) for i, v in enumerate(iterable)}
        named = {to_str(v): (None, v) for v in iterable}
        if len(named) < len(iterable):
            twice = next(n for n in named if [to_str(v) for v in iterable].count(n) > 1)
            raise ResolveError(f"`foreach` lists {twice!r} twice; each stage needs its own "
                               "name", keypath)
        return named
    raise ResolveError("`foreach` must be a list, a mapping, or a ${} naming one", keypath)


def matrix_items(matrix: Any, keypath: KeyPath) -> dict[str, dict[str, Any]]:
    """The cartesian product of the matrix's lists, named ``a-b`` by values (``key0`` for
    a composite value at index 0)."""
    if not isinstance(matrix, Mapping) or not matrix:
        raise ResolveError("`matrix` must be a mapping of names to lists", keypath)
    for name, values in matrix.items():
        if not isinstance(values, list) or not values:
            raise ResolveError(f"matrix entry {name!r} must be a non-empty list",
                               (*keypath, name))
    combos: dict[str, dict[str, Any]] = {}
    columns = [[(name, i, v) for i, v in enumerate(values)] for name, values in matrix.items()]
    for combination in itertools.product(*columns):
        fragments = [f"{name}{i}" if is_composite(v) else to_str(v) for name, i, v in combination]
        combos["-".join(fragments)] = {name: v for name, _, v in combination}
    return combos


def select_keys(doc: Mapping[str, Any], keys: Sequence[str], source: str) -> dict[str, Any]:
    """``file.yaml:a,b`` in vars: only keys a and b of the file, still under their names."""
    picked: dict[str, Any] = {}
    for key in keys:
        try:
            picked = merge(picked, _nest(key, lookup_var(doc, key)))
        except KeyError:
            raise KeyError(f"{key!r} is not in {source}") from None
    return picked


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    head, _, rest = dotted.partition(".")
    return {head: _nest(rest, value) if rest else value}
