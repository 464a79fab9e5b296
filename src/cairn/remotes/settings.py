"""`cairn remote add/modify/remove/default/list`: remotes as config keys.

A remote is the table ``[remote.NAME]`` (``url`` plus options for fsspec) in one config
layer; ``core.remote`` names the default. Writes go to the layer asked for: ``repo``
(committed), ``local`` (credentials), or ``global``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn.config import Config, read_toml
from cairn.errors import ConfigError, NotFoundError, UserError
from cairn.remotes.connect import (
    SCHEMES,
    check_restore_days,
    check_storage_class,
    check_tier,
    url_scheme,
)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class RemoteInfo:
    name: str
    url: str
    default: bool
    options: dict[str, Any] = field(default_factory=dict)  # everything but url


def remote_add(config: Config, name: str, url: str, default: bool = False,
               level: str = "repo", force: bool = False, cwd: Path | None = None) -> str:
    """Add remote `name`; return the URL as stored (local paths made config-relative)."""
    check_name(name)
    existing = config.remotes().get(name)
    if existing is not None and not force:
        raise UserError(f"remote {name!r} already exists (url {existing.get('url')!r}); "
                        f"use --force to replace it, or `cairn remote modify {name} url URL`")
    stored = store_url(config, url, level, cwd)
    if _defined_at(config, name, level):
        config.unset(f"remote.{name}", level)  # --force replaces the whole table
    config.set(f"remote.{name}.url", stored, level)
    if default:
        config.set("core.remote", name, level)
    return stored


def remote_modify(config: Config, name: str, option: str, value: str | None = None,
                  unset: bool = False, level: str = "repo", cwd: Path | None = None) -> None:
    """Set (or with `unset`, remove) `option` of remote `name`."""
    require(config, name)
    key = f"remote.{name}.{option}"
    if unset:
        config.unset(key, level)
        return
    if value is None:
        raise UserError(f"give a value for {option}, or --unset to remove it")
    if option == "url":
        value = store_url(config, value, level, cwd)
    elif option == "tier":
        check_tier(name, value)
    elif option == "restore_days":
        check_restore_days(name, value)
    elif option == "storage_class":
        check_storage_class(name, str(config.remotes()[name].get("url", "")), value)
    config.set(key, value, level)


def remote_remove(config: Config, name: str, level: str | None = None) -> list[str]:
    """Remove remote `name` from `level` (default: every layer that has it); return them."""
    require(config, name)
    levels = [level] if level else _writable_levels(config)
    removed = [lv for lv in levels if _defined_at(config, name, lv)]
    if not removed:
        where = f"the {level} config" if level else "any config file (is it set by CAIRN_*?)"
        raise NotFoundError(f"remote {name!r} is not in {where}; see `cairn remote list`")
    for lv in removed:
        config.unset(f"remote.{name}", lv)
    for lv in _writable_levels(config):  # a default naming it would now dangle
        if read_toml(config.path(lv)).get("core", {}).get("remote") == name:
            config.unset("core.remote", lv)
    return removed


def remote_default(config: Config, name: str | None = None, unset: bool = False,
                   level: str = "repo") -> str | None:
    """Set, clear or (with neither) return the default remote."""
    if unset:
        config.unset("core.remote", level)
        return None
    if name is not None:
        require(config, name)
        config.set("core.remote", name, level)
        return name
    current = config.get("core.remote")
    return str(current) if current else None


def remote_list(config: Config) -> list[RemoteInfo]:
    default = config.get("core.remote")
    return [RemoteInfo(name, str(opts.get("url", "")), name == default,
                       {k: v for k, v in opts.items() if k != "url"})
            for name, opts in sorted(config.remotes().items())]


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise UserError(f"bad remote name {name!r}: use letters, digits, '-' and '_' "
                        "(it becomes the config key remote.NAME)")


def require(config: Config, name: str) -> None:
    if name not in config.remotes():
        raise NotFoundError(f"unknown remote {name!r}; see `cairn remote list`, or add it "
                            f"with `cairn remote add {name} URL`")


KNOWN_URLS = "a local path, s3://, gs://, azure://, ssh://, http(s)://"


def store_url(config: Config, url: str, level: str, cwd: Path | None = None) -> str:
    """Check the URL; store a relative local path relative to the config file's dir."""
    if not url.strip():
        raise UserError("the remote URL is empty; give a local path or an s3://, gs://, azure://, "
                        "ssh:// or http(s):// URL")
    scheme = url_scheme(url)
    if scheme not in SCHEMES or scheme == "memory":
        raise UserError(f"unsupported remote URL {url!r}; use {KNOWN_URLS}")
    if scheme == "file":
        check_local_location(url, os.path.abspath(url.split("://", 1)[1]), config.dot_dir)
    if scheme:
        return url
    absolute = os.path.normpath((cwd or Path.cwd()) / os.path.expanduser(url))
    check_local_location(url, absolute, config.dot_dir)
    if os.path.isabs(os.path.expanduser(url)):
        return url
    if level == "global":
        return absolute
    return os.path.relpath(absolute, config.path(level).parent)


def check_local_location(url: str, path: str, dot_dir: Path | None,
                         name: str | None = None) -> None:
    """Refuse a local remote where a push would write into the workspace, the cache or git
    (`name`: a remote already configured so, to say how to move it)."""
    if dot_dir is None:
        return
    target = Path(os.path.realpath(path))
    root = Path(os.path.realpath(dot_dir.parent))
    if target == root:
        what = "is the repository root itself, where a push would write objects/ into the " \
               "workspace"
    elif target.is_relative_to(Path(os.path.realpath(dot_dir))):
        what = f"is inside the repository's {dot_dir.name}/ directory (cache and config)"
    elif ".git" in target.parts:
        what = "is inside a .git directory, which belongs to git"
    else:
        return
    todo = f"`cairn remote modify {name} url PATH` to " if name else ""
    raise UserError(f"remote URL {url!r} ({target}) {what}; {todo}use a directory outside "
                    "the repository, e.g. ../cairn-remote")


def _writable_levels(config: Config) -> list[str]:
    return ["repo", "local", "global"] if config.dot_dir is not None else ["global"]


def _defined_at(config: Config, name: str, level: str) -> bool:
    try:
        path = config.path(level)
    except ConfigError:
        return False
    return name in read_toml(path).get("remote", {})
