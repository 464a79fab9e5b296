"""Telling backend errors apart without importing the backends.

Filesystems raise their own types (botocore, aiohttp, OSError from s3fs, …); they are
recognised by class name and cloud error code along the cause chain, so that none of
those packages must be installed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping


def error_chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def error_names(error: BaseException) -> set[str]:
    """Class names and cloud error codes along the cause chain."""
    return {type(e).__name__ for e in error_chain(error)} | set(_error_codes(error))


def _error_codes(error: BaseException) -> Iterator[str]:
    for e in error_chain(error):
        response = getattr(e, "response", None)
        if isinstance(response, Mapping):
            code = response.get("Error", {}).get("Code")
            if code:
                yield str(code)


def missing_bucket(error: BaseException) -> bool:
    """A whole bucket (or container) missing: the store's failure, not one object's."""
    return bool(error_names(error) & {"NoSuchBucket", "ContainerNotFound", "BucketNotFound"})


def range_refused(error: BaseException) -> bool:
    return "InvalidRange" in error_names(error)


def needs_restore(error: BaseException) -> bool:
    """An archived object (S3 GLACIER, DEEP_ARCHIVE) read before a restore made it readable."""
    return "InvalidObjectState" in error_names(error)
