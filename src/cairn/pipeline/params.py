"""Params files (YAML, JSON, TOML, Python) and the values a stage depends on.

A Python params file is read with `ast`, never executed: module-level constants
(``LR = 0.01``), class attributes (``class Train: lr = 0.01`` → ``Train.lr``) and
``self.x = …`` assignments in a class's ``__init__``, each only when its value is a
literal. Other suffixes are read as YAML, as DVC does.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.errors import FormatError, UserError

if TYPE_CHECKING:
    import ast

    from cairn.pipeline.schema import Stage

DEFAULT_PARAMS_FILE = "params.yaml"


def yaml_cache_dir(root: Path) -> Path | None:
    """Where parsed YAML of the workspace at `root` is kept: inside .cairn/tmp (ignored
    by git), or nowhere outside a Cairn repository."""
    dot_dir = root / ".cairn"
    return dot_dir / "tmp" / "yaml" if dot_dir.is_dir() else None


def read_params(path: str, data: bytes, cache_dir: Path | None = None,
                kind: str = "params") -> dict[str, Any]:
    """The params in `data`, the contents of `path`; FormatError (file:line) if malformed.
    `cache_dir`: where parsed YAML may be kept (see `yamlfile.load`); `kind`: what the
    file is to the user ("params", "metrics"), for the error message."""
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if suffix == "json":
        doc = _read_json(path, data)
    elif suffix == "toml":
        doc = _read_toml(path, data)
    elif suffix == "py":
        doc = _read_python(path, data)
    else:
        from cairn import yamlfile

        doc = yamlfile.load(data, path, cache_dir)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise FormatError(f"a {kind} file must hold a mapping of names to values", path, 1)
    return doc


def _read_json(path: str, data: bytes) -> Any:
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise FormatError(f"invalid JSON: {e.msg}", path, e.lineno) from None
    except UnicodeDecodeError:
        raise FormatError("not UTF-8 text", path) from None


def _read_toml(path: str, data: bytes) -> Any:
    import re
    import tomllib

    try:
        return tomllib.loads(data.decode("utf-8"))
    except tomllib.TOMLDecodeError as e:
        found = re.search(r"\(at line (\d+)", str(e))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise FormatError(f"invalid TOML: {message}", path,
                          int(found[1]) if found else None) from None
    except UnicodeDecodeError:
        raise FormatError("not UTF-8 text", path) from None


def _read_python(path: str, data: bytes) -> dict[str, Any]:
    import ast

    try:
        module = ast.parse(data, filename=path)
    except SyntaxError as e:
        raise FormatError(f"invalid Python: {e.msg}", path, e.lineno) from None
    except ValueError as e:  # e.g. null bytes
        raise FormatError(f"invalid Python: {e}", path) from None
    return _python_assignments(module.body)


def _python_assignments(body: list[ast.stmt]) -> dict[str, Any]:
    import ast

    found: dict[str, Any] = {}
    for stmt in body:
        if isinstance(stmt, ast.ClassDef):
            found[stmt.name] = _python_assignments(stmt.body)
        elif isinstance(stmt, ast.FunctionDef) and stmt.name == "__init__":
            found.update(_init_attributes(stmt))
        for name, value in _assigned(stmt):
            _set_literal(found, name, value)
    return found


def _set_literal(found: dict[str, Any], name: str, value: ast.expr) -> None:
    """found[name] = the value, when it is a literal (anything else is never evaluated)."""
    import ast

    with contextlib.suppress(ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        found[name] = ast.literal_eval(value)


def _assigned(stmt: ast.stmt) -> list[tuple[str, ast.expr]]:
    import ast

    if isinstance(stmt, ast.Assign):
        return [(t.id, stmt.value) for t in stmt.targets if isinstance(t, ast.Name)]
    if isinstance(stmt, ast.AnnAssign) and stmt.value is not None \
            and isinstance(stmt.target, ast.Name):
        return [(stmt.target.id, stmt.value)]
    return []


def _init_attributes(init: ast.FunctionDef) -> dict[str, Any]:
    """``self.lr = 0.01`` in ``__init__``: attributes of the class's instances."""
    import ast

    found: dict[str, Any] = {}
    for stmt in init.body:
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                    and target.value.id == "self":
                _set_literal(found, target.attr, value)
    return found


def lookup(params: Mapping[str, Any], dotted: str) -> Any:
    """The value at ``train.lr`` (list items by index: ``layers.0``); KeyError if absent.

    A key that itself contains dots (``{"a.b": 1}``) is found too.
    """
    if dotted in params:
        return params[dotted]
    head, sep, rest = dotted.partition(".")
    while sep:
        if head in params:
            value = params[head]
            if isinstance(value, Mapping):
                try:
                    return lookup(value, rest)
                except KeyError:
                    pass
            elif isinstance(value, list):
                try:
                    return _lookup_list(value, rest)
                except KeyError:
                    pass
        more, sep, rest = rest.partition(".")
        head = f"{head}.{more}"
    raise KeyError(dotted)


def _lookup_list(items: list[Any], dotted: str) -> Any:
    index, _, rest = dotted.partition(".")
    if not index.isdigit() or int(index) >= len(items):
        raise KeyError(dotted)
    value = items[int(index)]
    if not rest:
        return value
    if isinstance(value, Mapping):
        return lookup(value, rest)
    if isinstance(value, list):
        return _lookup_list(value, rest)
    raise KeyError(dotted)


def load_params_file(root: Path, relpath: str, stage_name: str | None = None) -> dict[str, Any]:
    """A params file in the workspace; UserError if it does not exist."""
    try:
        data = (root / relpath).read_bytes()
    except FileNotFoundError:
        whose = f" (stage {stage_name})" if stage_name else ""
        raise UserError(f"params file {relpath} not found{whose}; create it or fix the "
                        "stage's params") from None
    except IsADirectoryError:
        raise UserError(f"params file {relpath} is a directory") from None
    return read_params(relpath, data, yaml_cache_dir(root))


def stage_param_values(root: Path, stage: Stage, files: dict[str, dict[str, Any]] | None = None
                       ) -> dict[str, dict[str, Any]]:
    """``{file: {key: value}}`` for every param the stage names; a file listed without
    keys gives all its top-level keys. `files` memoizes parsed params files across stages."""
    files = {} if files is None else files
    values: dict[str, dict[str, Any]] = {}
    for ref in stage.params:
        if ref.file not in files:
            files[ref.file] = load_params_file(root, ref.file, stage.name)
        params = files[ref.file]
        found = values.setdefault(ref.file, {})
        if ref.key is None:
            found.update(params)
            continue
        try:
            found[ref.key] = lookup(params, ref.key)
        except KeyError:
            raise UserError(f"unknown param '{ref.key}' in {ref.file} (stage {stage.name}); "
                            f"add it to {ref.file} or fix the stage's params") from None
    return values
