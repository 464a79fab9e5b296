"""The audit log read back: every change to a model, and who held a stage at a moment.

"Which version was in Production on 3 March?" is answered by replaying the model's
audit entries up to that moment: registrations enter stage None, transitions (including
the archiving that `archive_existing_versions` does) move a version, deletions remove
it. The log is append-only, so the answer never changes after the fact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time

from cairn.errors import NotFoundError, UserError
from cairn.registry.stages import canonical
from cairn.registry.uris import get_model
from cairn.store.base import MetadataStore
from cairn.store.entities import AuditEntry


@dataclass(frozen=True)
class StageHolders:
    name: str
    stage: str
    at: int  # milliseconds since the epoch
    versions: tuple[int, ...]  # usually one; several if promoted without archiving
    since: dict[int, int]  # version → when it entered the stage (ms)


def parse_moment(text: str) -> int:
    """ISO date or date-time → ms since the epoch. A bare date means the end of that day;
    a time without a zone is local time (as `git log --until` reads it)."""
    value = text.strip()
    if value.lower() == "now":
        return int(datetime.now().timestamp() * 1000)
    try:
        if len(value) == 10:  # YYYY-MM-DD
            day = datetime.fromisoformat(value)
            moment = datetime.combine(day.date(), time.max)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"--at {text!r} is not a date; use YYYY-MM-DD or "
                        "YYYY-MM-DDTHH:MM[:SS][+HH:MM]") from None
    return int(moment.timestamp() * 1000)


def history(store: MetadataStore, name: str) -> list[AuditEntry]:
    try:
        entries = store.get_audit_log(name)  # a deleted model's too
    except NotFoundError:
        get_model(store, name)  # the error naming the models that exist
        raise
    return sorted(entries, key=lambda e: (e.timestamp, e.id))


def stages_at(entries: Iterable[AuditEntry], at: int) -> dict[int, tuple[str, int]]:
    """version → (its stage, since when) as of moment `at`."""
    state: dict[int, tuple[str, int]] = {}
    for e in sorted(entries, key=lambda e: (e.timestamp, e.id)):
        if e.timestamp > at:
            break
        if e.action == "delete_model":
            state.clear()
        elif e.version is None:
            continue
        elif e.action == "register":
            state[e.version] = (e.to_value or "None", e.timestamp)
        elif e.action == "transition" and e.to_value:
            state[e.version] = (e.to_value, e.timestamp)
        elif e.action == "delete_version":
            state.pop(e.version, None)
    return state


def holders_at(store: MetadataStore, name: str, stage: str, at: int) -> StageHolders:
    wanted = canonical(stage)
    state = stages_at(history(store, name), at)
    versions = sorted(v for v, (s, _) in state.items() if s == wanted)
    return StageHolders(name, wanted, at, tuple(versions),
                        {v: state[v][1] for v in versions})

