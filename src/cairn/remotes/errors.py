"""Failures of networks, services and disks, as one-line RemoteErrors.

Backends raise their own types (botocore, aiohttp, OSError from s3fs, …); they are told
apart by class name and error code so that none of those packages must be installed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from cairn.errors import RemoteError

if TYPE_CHECKING:
    from cairn.remotes.remote import Remote


def translate_error(remote: Remote, error: Exception, doing: str) -> RemoteError | None:
    """A RemoteError for failures of the network, the service or the disk; None for bugs."""
    if not _is_io_error(error):
        return None
    where = f"remote {remote.name!r} ({remote.url})"
    detail = _one_line(error)
    if missing_bucket(error):
        what = "the bucket (or container) does not exist"
        todo = f"create it, or fix the URL with `cairn remote modify {remote.name} url URL`"
    elif _names(error) & {"NoCredentialsError", "PartialCredentialsError"}:
        what = "no credentials were found"
        todo = (f"set them with `cairn remote modify --local {remote.name} key …` and "
                "`… secret …`, or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
    elif _denied(error):
        what = f"access denied ({detail})"
        todo = ("check the path's permissions" if remote.scheme == "file" else
                f"check its credentials (`cairn remote modify --local {remote.name} key …`, "
                "environment variables or profile) and bucket permissions")
    elif _unreachable(error):
        what = f"cannot reach {remote.endpoint or remote.url} ({detail})"
        todo = ("check the network and the endpoint "
                f"(`cairn remote modify {remote.name} endpoint_url URL`)")
    else:
        what = f"could not {doing} ({detail})"
        todo = "check the remote and retry; a rerun only moves what is missing"
    return RemoteError(f"{where}: {what}; {todo}", remote.name)


_IO_MODULES = ("botocore", "aiobotocore", "aiohttp", "google", "azure", "asyncssh", "fsspec",
               "s3fs", "gcsfs", "adlfs", "sshfs", "requests", "urllib3")


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _names(error: BaseException) -> set[str]:
    return {type(e).__name__ for e in _chain(error)} | set(_error_codes(error))


def _error_codes(error: BaseException) -> Iterator[str]:
    for e in _chain(error):
        response = getattr(e, "response", None)
        if isinstance(response, Mapping):
            code = response.get("Error", {}).get("Code")
            if code:
                yield str(code)


def _is_io_error(error: BaseException) -> bool:
    return any(isinstance(e, OSError) or type(e).__module__.split(".")[0] in _IO_MODULES
               for e in _chain(error))


def missing_bucket(error: BaseException) -> bool:
    return bool(_names(error) & {"NoSuchBucket", "ContainerNotFound", "BucketNotFound"})


def range_refused(error: BaseException) -> bool:
    return "InvalidRange" in _names(error)


def _denied(error: BaseException) -> bool:
    codes = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden",
             "ExpiredToken", "InvalidToken", "AuthorizationFailure", "AuthenticationFailed"}
    return any(isinstance(e, PermissionError) for e in _chain(error)) or bool(
        _names(error) & codes)


def _unreachable(error: BaseException) -> bool:
    names = {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
             "ClientConnectorError", "ServerTimeoutError", "FSTimeoutError", "gaierror"}
    return any(isinstance(e, ConnectionError | TimeoutError) for e in _chain(error)) or bool(
        _names(error) & names)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."
