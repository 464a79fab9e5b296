"""Failures of networks, services and disks, as one-line RemoteErrors.

Backends raise their own types (botocore, aiohttp, OSError from s3fs, …);
`cairn.objects.backend_errors` tells them apart without importing any of them.
"""

from __future__ import annotations

from cairn.errors import RemoteError
from cairn.objects.backend_errors import error_chain, error_names, missing_bucket
from cairn.objects.odb import ObjectDB


def translate_error(remote: ObjectDB, error: Exception, doing: str) -> RemoteError | None:
    """A RemoteError for failures of the network, the service or the disk; None for bugs."""
    if not _is_io_error(error):
        return None
    where = f"remote {remote.name!r} ({remote.url})"
    detail = _one_line(error)
    if missing_bucket(error):
        what = "the bucket (or container) does not exist"
        todo = f"create it, or fix the URL with `cairn remote modify {remote.name} url URL`"
    elif error_names(error) & {"NoCredentialsError", "PartialCredentialsError"}:
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


def _is_io_error(error: BaseException) -> bool:
    return any(isinstance(e, OSError) or type(e).__module__.split(".")[0] in _IO_MODULES
               for e in error_chain(error))


def _denied(error: BaseException) -> bool:
    codes = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden",
             "ExpiredToken", "InvalidToken", "AuthorizationFailure", "AuthenticationFailed"}
    return any(isinstance(e, PermissionError) for e in error_chain(error)) or bool(
        error_names(error) & codes)


def _unreachable(error: BaseException) -> bool:
    names = {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
             "ClientConnectorError", "ServerTimeoutError", "FSTimeoutError", "gaierror"}
    return any(isinstance(e, ConnectionError | TimeoutError)
               for e in error_chain(error)) or bool(error_names(error) & names)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."
