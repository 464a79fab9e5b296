"""The settings operations: remotes (add, list, modify, remove, default) and config keys
— as the CLI and the server call them.

Settings are the layered TOML configuration seen from the working directory: the
repository's files (`repo`: committed, `local`: credentials) and the user's (`global`).
Outside a repository only `global` can be read or written. Each function reads or writes
the layer `level` names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cairn.config import Config, key_type

if TYPE_CHECKING:
    from cairn.remotes.settings import RemoteInfo


def _config(level: str | None) -> Config:
    from cairn.project.context import find_config

    return find_config(level)


# -- remotes ----------------------------------------------------------------------------

def remote_add(name: str, url: str, *, default: bool = False, force: bool = False,
               level: str = "repo") -> str:
    """Add remote `name` at `url` (with `default`, make it the default; with `force`,
    replace one of that name); the URL as stored (a local path relative to the config)."""
    from cairn.remotes.settings import remote_add as add

    return add(_config(level), name, url, default=default, level=level, force=force)


def remote_list() -> list[RemoteInfo]:
    from cairn.remotes.settings import remote_list as listed

    return listed(_config(None))


def remote_modify(name: str, option: str, value: str | None = None, *, unset: bool = False,
                  level: str = "repo") -> None:
    """Set (or with `unset`, remove) `option` of remote `name`."""
    from cairn.remotes.settings import remote_modify as modify

    modify(_config(level), name, option, value, unset=unset, level=level)


def remote_remove(name: str, *, level: str | None = None) -> list[str]:
    """Remove remote `name` from `level` (default: every layer that has it); the layers."""
    from cairn.remotes.settings import remote_remove as remove

    return remove(_config(level), name, level)


def remote_default(name: str | None = None, *, unset: bool = False,
                   level: str = "repo") -> str | None:
    """Make `name` the default remote, or with `unset` have none; with neither, the
    default remote (None: there is none)."""
    from cairn.remotes.settings import remote_default as default

    return default(_config(level), name, unset=unset, level=level)


# -- config keys --------------------------------------------------------------------------

def config_list(*, level: str = "repo") -> list[tuple[str, object]]:
    """Every key in effect, dotted and sorted, with its value."""
    return _flatten(_config(level).merged())


def config_get(key: str, *, level: str = "repo") -> Any:
    """The value of `key` in effect (None: unset); an unknown key is a ConfigError."""
    return _config_of(key, level).get(key)


def config_set(key: str, value: str, *, level: str = "repo") -> None:
    _config_of(key, level).set(key, value, level)


def config_unset(key: str, *, level: str = "repo") -> None:
    _config_of(key, level).unset(key, level)


def _config_of(key: str, level: str) -> Config:
    config = _config(level)
    key_type(key)  # rejects unknown keys with the list of known ones
    return config


def _flatten(tree: dict[str, object], prefix: str = "") -> list[tuple[str, object]]:
    items: list[tuple[str, object]] = []
    for k, v in sorted(tree.items()):
        if isinstance(v, dict):
            items.extend(_flatten(v, f"{prefix}{k}."))
        else:
            items.append((f"{prefix}{k}", v))
    return items
