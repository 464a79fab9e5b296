"""Opening a remote: the one way from configuration (a name, else the default) to an
ObjectDB, with its URL scheme, fsspec options and missing backends explained.

``remote.NAME.url`` picks the filesystem; every other ``remote.NAME.*`` key except
``jobs``, ``tier`` and ``restore_days`` is passed to it (for S3, ``endpoint_url`` and
``region`` go into ``client_kwargs`` as s3fs wants, ``storage_class`` becomes the
``StorageClass`` of every upload, and DVC's option names are accepted too).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.config import Config
from cairn.errors import ConfigError, RemoteError
from cairn.objects.odb import LazyFileSystem, ObjectDB
from cairn.remotes.failures import translate_error

# URL scheme → (fsspec protocol, the extra that installs its backend).
SCHEMES: dict[str, tuple[str, str | None]] = {
    "": ("file", None), "file": ("file", None), "memory": ("memory", None),
    "s3": ("s3", "s3"), "gs": ("gs", "gcs"), "gcs": ("gs", "gcs"),
    "azure": ("az", "azure"), "az": ("az", "azure"), "abfs": ("abfs", "azure"),
    "ssh": ("ssh", "ssh"), "sftp": ("ssh", "ssh"),
    "http": ("http", None), "https": ("https", None),
}
# Keys of remote.NAME.* that Cairn reads itself; every other one goes to fsspec.
CAIRN_OPTIONS = frozenset({"url", "jobs", "tier", "restore_days"})
# remote.NAME.tier: "cold" holds what only Archived versions need (cairn.remotes.tiers).
TIERS = ("hot", "cold")
# remote.NAME.storage_class (S3 only): what s3fs gives each upload as its StorageClass.
S3_STORAGE_CLASSES = ("STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
                      "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE", "REDUCED_REDUNDANCY")
DEFAULT_RESTORE_DAYS = 7  # how long S3 keeps a restored copy of an archived object
S3_CONNECT_TIMEOUT = 3
S3_READ_TIMEOUT = 30
S3_MAX_ATTEMPTS = 2
S3_ALIASES = {"access_key_id": "key", "secret_access_key": "secret", "session_token": "token"}


def url_scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


@dataclass(frozen=True)
class RemoteConfig:
    """A remote as configured, before anything is imported or connected."""

    name: str
    url: str  # resolved: relative local paths made absolute
    options: dict[str, Any]
    jobs: int | None
    tier: str = "hot"
    restore_days: int = DEFAULT_RESTORE_DAYS

    def connect(self) -> ObjectDB:
        return connect(self.name, self.url, self.options, self.jobs)


def open_remote(config: Config, name: str | None = None, needed_for: str | None = None
                ) -> ObjectDB:
    """The remote called `name`, or the default one (`core.remote`); `needed_for` names
    the command in the error when there is neither."""
    return configured_remote(config, name, needed_for).connect()


def has_remote(config: Config, name: str | None = None) -> bool:
    """Whether `open_remote` has a name to open (`name`, or a default remote)."""
    return bool(name or config.get("core.remote"))


def configured_remote(config: Config, name: str | None = None,
                      needed_for: str | None = None) -> RemoteConfig:
    """The remote called `name`, or the default one, as configured (nothing connected)."""
    name = name or config.get("core.remote")
    remotes = config.remotes()
    if not name and needed_for is not None:
        raise ConfigError(f"{needed_for} needs a remote and none is the default; "
                          "pass -r NAME or run `cairn remote default NAME`")
    if not name:
        raise RemoteError("no remote given and no default remote; add one with "
                          "`cairn remote add -d NAME URL`, or pass -r NAME")
    if name not in remotes:
        known = f" (known: {', '.join(sorted(remotes))})" if remotes else ""
        raise RemoteError(f"unknown remote {name!r}{known}; see `cairn remote list`", name)
    options = remotes[name]
    url = options.get("url")
    if not isinstance(url, str) or not url:
        raise RemoteError(f"remote {name!r} has no url; set one with "
                          f"`cairn remote modify {name} url URL`", name)
    jobs = options.get("jobs")
    fs_options = {k: v for k, v in options.items() if k not in CAIRN_OPTIONS}
    return RemoteConfig(name, resolve_url(url, config.dot_dir), fs_options,
                        jobs if isinstance(jobs, int) else None,
                        check_tier(name, options.get("tier", "hot")),
                        check_restore_days(name, options.get("restore_days",
                                                             DEFAULT_RESTORE_DAYS)))


def check_tier(name: str, tier: object) -> str:
    if tier not in TIERS:
        raise ConfigError(f"remote.{name}.tier is {tier!r}; it takes \"hot\" (the default) or "
                          f"\"cold\" — fix it with `cairn remote modify {name} tier cold`")
    return str(tier)


def check_restore_days(name: str, days: object) -> int:
    text = str(days).strip()
    if isinstance(days, bool) or not text.isdigit() or not 1 <= int(text) <= 365:
        raise ConfigError(f"remote.{name}.restore_days is {days!r}; it takes a number of days "
                          "from 1 to 365 (how long S3 keeps a restored copy)")
    return int(text)


def check_storage_class(name: str, url: str, storage_class: object) -> str:
    """`remote.NAME.storage_class`: an S3 class, on an s3:// remote only."""
    if url_scheme(url) != "s3":
        raise ConfigError(
            f"remote.{name}.storage_class applies to s3:// remotes only; for gs:// set the "
            "bucket's default storage class instead (`gcloud storage buckets update gs://BUCKET "
            "--default-storage-class=COLDLINE`), which every object written there takes")
    if storage_class not in S3_STORAGE_CLASSES:
        raise ConfigError(f"remote.{name}.storage_class is {storage_class!r}; S3 takes one of "
                          f"{', '.join(S3_STORAGE_CLASSES)}")
    return str(storage_class)


def resolve_url(url: str, config_dir: Path | None) -> str:
    """Relative local paths in config are relative to the .cairn directory, as in DVC."""
    if url_scheme(url):
        return url
    path = os.path.expanduser(url)
    if os.path.isabs(path):
        return path
    return os.path.normpath((config_dir or Path.cwd()) / path)


def connect(name: str, url: str, options: Mapping[str, Any] | None = None,
            jobs: int | None = None) -> ObjectDB:
    """The remote `name` at `url`, its filesystem built by fsspec with `options`."""
    scheme = url_scheme(url)
    if scheme not in SCHEMES:
        raise RemoteError(f"remote {name!r}: unsupported URL scheme {scheme!r} in {url}; use a "
                          "local path, s3://, gs://, azure://, ssh:// or http(s)://", name)
    protocol, extra = SCHEMES[scheme]
    fs_url = url if not scheme else f"{protocol}://{url.split('://', 1)[1]}"
    if options and "storage_class" in options:
        check_storage_class(name, url, options["storage_class"])
    try:
        kwargs = fs_options(protocol, dict(options or {}))
        if protocol == "file":
            base = os.path.abspath(fs_url.removeprefix("file://"))
            fs: Any = LazyFileSystem(lambda: _make_fs(base, "file", kwargs)[0], "file")
        else:
            fs, base = _make_fs(fs_url, protocol, kwargs)
    except ImportError:
        package = f"'cairn[{extra}]'" if extra else "aiohttp"
        raise RemoteError(f"remote {name!r} ({url}) needs an optional package: "
                          f"pip install {package}", name) from None
    except (TypeError, ValueError, AttributeError) as e:
        raise RemoteError(f"remote {name!r}: cannot use its options ({_short(e)}); check "
                          "them with `cairn config -l` and `cairn remote modify`", name) from None
    endpoint = kwargs.get("client_kwargs", {}).get("endpoint_url")
    return ObjectDB(fs, base, name=name, url=url, scheme=protocol, jobs=jobs,
                    endpoint=endpoint, explain=translate_error)


def fs_options(protocol: str, options: dict[str, Any]) -> dict[str, Any]:
    """Config options → fsspec keyword arguments, with listings never cached."""
    if protocol == "s3":
        options = _s3_options(options)
    if protocol not in ("file", "memory", "http", "https", "ssh"):
        # Another process may push meanwhile: always ask the store, never a stale listing.
        options.setdefault("use_listings_cache", False)
    return options


def _s3_options(options: dict[str, Any]) -> dict[str, Any]:
    for alias, key in S3_ALIASES.items():  # the names DVC users know
        if alias in options:
            options.setdefault(key, options.pop(alias))
    if "storage_class" in options:  # every put and multipart upload, filtered by s3fs
        extra = dict(options.pop("s3_additional_kwargs", None) or {})
        options["s3_additional_kwargs"] = {**extra, "StorageClass": options.pop("storage_class")}
    client = dict(options.pop("client_kwargs", None) or {})
    if "endpoint_url" in options:
        client["endpoint_url"] = options.pop("endpoint_url")
    if "region" in options:
        client["region_name"] = options.pop("region")
    # Modest: an unreachable endpoint must fail within seconds, not minutes. A new dict
    # each time, since botocore rewrites `retries` in place.
    config = {"connect_timeout": S3_CONNECT_TIMEOUT, "read_timeout": S3_READ_TIMEOUT,
              "retries": {"max_attempts": S3_MAX_ATTEMPTS, "mode": "standard"},
              **(options.pop("config_kwargs", None) or {})}
    for key in ("connect_timeout", "read_timeout"):
        if key in options:
            config[key] = options.pop(key)
    return {**options, "client_kwargs": client, "config_kwargs": config}


def _make_fs(fs_url: str, protocol: str, kwargs: dict[str, Any]) -> tuple[Any, str]:
    import fsspec.core

    if protocol == "ssh":
        _use_sshfs()
    fs, base = fsspec.core.url_to_fs(fs_url, **kwargs)
    return fs, str(base)


def _use_sshfs() -> None:
    """ssh:// through sshfs (the `ssh` extra), not fsspec's paramiko-based default."""
    import importlib.util

    import fsspec

    if importlib.util.find_spec("sshfs") is None:
        raise ImportError("sshfs")
    for protocol in ("ssh", "sftp"):
        fsspec.register_implementation(protocol, "sshfs.SSHFileSystem", clobber=True)


def _short(error: BaseException) -> str:
    return " ".join(str(error).split())[:160]
