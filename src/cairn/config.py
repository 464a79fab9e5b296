"""Layered TOML configuration.

Layers, lowest precedence first (SPEC §1):
``.cairn/config.toml`` (committed) < ``.cairn/config.local.toml`` (ignored; credentials)
< ``~/.config/cairn/config.toml`` (global) < environment ``CAIRN_SECTION__KEY``.

Keys are dotted: ``core.remote``, ``cache.type``, ``remote.origin.url``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn.errors import ConfigError, FormatError

LEVELS = ("repo", "local", "global")

# Known keys and their types; `remote.<name>.<option>` passes any option on to fsspec.
SCHEMA: dict[str, type] = {
    "format": int,
    "core.remote": str,
    "core.autostage": bool,
    "core.lock_timeout": float,
    "core.jobs": int,
    "cache.dir": str,
    "cache.type": str,
    "tracking.uri": str,
    "tracking.flush_interval": float,
    "tracking.flush_rows": int,
    "retention.runs.max_age": str,
    "retention.runs.keep_if_stage": list,
    "retention.runs.keep_if_tagged": list,
}
REMOTE_TYPES: dict[str, type] = {"url": str, "jobs": int, "tier": str}
TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
              list: "a list of strings"}


def global_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cairn" / "config.toml"


def coerce(key: str, value: Any) -> Any:
    """Turn a CLI or environment string into the type `key` takes."""
    kind = key_type(key)
    if not isinstance(value, str) or kind is str:
        return value
    text = value.strip()
    if kind is list:  # CLI and environment: comma-separated
        return [part.strip() for part in text.split(",") if part.strip()]
    try:
        if kind is bool:
            if text.lower() in ("true", "yes", "1", "on"):
                return True
            if text.lower() in ("false", "no", "0", "off"):
                return False
            raise ValueError(text)
        return kind(text)
    except ValueError:
        raise ConfigError(f"config key {key} takes {TYPE_WORDS[kind]}, not {value!r}") from None


def key_type(key: str) -> type:
    parts = key.split(".")
    if parts[0] == "remote":
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise ConfigError(f"config key {key!r} must look like remote.NAME.OPTION")
        return REMOTE_TYPES.get(parts[2], str)
    if key not in SCHEMA:
        known = ", ".join(sorted(SCHEMA))
        raise ConfigError(f"unknown config key {key!r}; known keys: {known}, remote.NAME.OPTION")
    return SCHEMA[key]


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError as e:
        raise FormatError(f"not UTF-8 text (byte {e.start}); TOML files are UTF-8 — fix or "
                          "remove the file", str(path),
                          bytes(e.object[:e.start]).count(b"\n") + 1) from None
    except tomllib.TOMLDecodeError as e:
        # Python 3.11 puts the position only in the message: "... (at line 3, column 7)".
        found = re.search(r"\(at line (\d+), column \d+\)", str(e))
        line = int(found.group(1)) if found else None
        reason = re.sub(r"\s*\(at line.*\)$", "", str(e))
        raise FormatError(f"invalid TOML ({reason}); fix or remove the file", str(path),
                          line) from None


def write_toml(path: Path, data: Mapping[str, Any]) -> None:
    import tomli_w

    from cairn.fsutil import atomic_write

    atomic_write(path, tomli_w.dumps(dict(data)).encode())


def _get(tree: Mapping[str, Any], key: str) -> Any:
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def _set(tree: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _unset(tree: dict[str, Any], key: str) -> bool:
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        if part not in node:
            return False
        node = node[part]
    return node.pop(leaf, None) is not None


def _merge(into: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for k, v in layer.items():
        if isinstance(v, Mapping) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        elif isinstance(v, Mapping):
            into[k] = {}
            _merge(into[k], v)
        else:
            into[k] = v


def env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    """``CAIRN_CORE__REMOTE=s3`` → ``{"core": {"remote": "s3"}}``."""
    layer: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith("CAIRN_") or "__" not in name:
            continue
        key = ".".join(p.lower() for p in name[len("CAIRN_"):].split("__"))
        _set(layer, key, coerce(key, raw))
    return layer


@dataclass
class Config:
    """The merged view of every layer; writes go to one named layer."""

    dot_dir: Path | None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    def path(self, level: str) -> Path:
        if level == "global":
            return global_config_path()
        if self.dot_dir is None:
            raise ConfigError(f"--{level} needs a Cairn repository; use --global outside one")
        return self.dot_dir / ("config.toml" if level == "repo" else "config.local.toml")

    def layers(self) -> Iterator[dict[str, Any]]:
        if self.dot_dir is not None:
            yield read_toml(self.dot_dir / "config.toml")
            yield read_toml(self.dot_dir / "config.local.toml")
        yield read_toml(global_config_path())
        yield env_layer(self.environ)

    def merged(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for layer in self.layers():
            _merge(out, layer)
        return out

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return _get(self.merged(), key)
        except KeyError:
            return default

    def set(self, key: str, value: Any, level: str = "repo") -> None:
        value = coerce(key, value)
        path = self.path(level)
        data = read_toml(path)
        _set(data, key, value)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_toml(path, data)

    def unset(self, key: str, level: str = "repo") -> None:
        path = self.path(level)
        data = read_toml(path)
        if not _unset(data, key):
            raise ConfigError(f"config key {key} is not set in {path}")
        write_toml(path, data)

    def remotes(self) -> dict[str, dict[str, Any]]:
        section = self.merged().get("remote", {})
        return {name: dict(opts) for name, opts in section.items() if isinstance(opts, Mapping)}
