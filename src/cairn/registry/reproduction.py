"""Reproductions of a model version, as the audit log records them.

`cairn reproduce` appends one audit row per attempt (action "reproduce", `to_value` one
of STATUSES, `details` the digests, metric deltas and tolerance). The newest row is the
version's standing: a version is reproducible iff it `passed`.
"""

from __future__ import annotations

from cairn.store.base import MetadataStore
from cairn.store.entities import AuditEntry

ACTION = "reproduce"
MATCH = "match"  # the rebuilt artifact has the recorded digest
WITHIN_TOLERANCE = "within_tolerance"  # other bytes, every metric within the tolerance
MISMATCH = "mismatch"  # other bytes, and metrics differ beyond the tolerance (or no tolerance)
FAILED = "failed"  # could not be rebuilt at all (the reason says why)
STATUSES = (MATCH, WITHIN_TOLERANCE, MISMATCH, FAILED)
PASSING = frozenset({MATCH, WITHIN_TOLERANCE})


def record(store: MetadataStore, name: str, version: int, status: str, reason: str,
           details: dict[str, object], user_id: str) -> AuditEntry:
    """Append the outcome of one reproduction of `name` v`version` to its audit log."""
    if status not in STATUSES:
        raise ValueError(f"unknown reproduction status {status!r}")
    return store.add_audit_entry(name, version, ACTION, user_id=user_id, reason=reason,
                                 details=details, to_value=status)


def last_reproduction(store: MetadataStore, name: str, version: int) -> AuditEntry | None:
    """The newest "reproduce" row of `name` v`version`, or None if it was never tried."""
    rows = [e for e in store.get_audit_log(name, version) if e.action == ACTION]
    return max(rows, key=lambda e: (e.timestamp, e.id), default=None)


def passed(entry: AuditEntry | None) -> bool:
    """Whether a reproduction row says the version was rebuilt (bytes or metrics)."""
    return entry is not None and entry.to_value in PASSING
