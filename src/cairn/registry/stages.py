"""Model version stages: the one vocabulary, its rules, and the one way to promote.

    None → Staging → Production → Archived     (any move between them is allowed)

Stage names are accepted in any case, as MLflow accepts them ("production"), and
always stored and shown canonical. `archive_existing` (MLflow's
`archive_existing_versions`) moves the other holders of the target stage to Archived,
and only makes sense for Staging and Production.

Every promotion — `Client.transition_model_version_stage`, `cairn models promote`, and
later the server — goes through `cairn.registry.promotion.promote`: `plan` checks the
stage rules and makes the `StageChange`, the gates decide, and the store applies it in
one transaction and says what it did.
"""

from __future__ import annotations

from cairn.errors import UserError
from cairn.store.entities import StageChange
from cairn.store.search import BoolOp, Filter, parse_filter

STAGES = ("None", "Staging", "Production", "Archived")
ARCHIVED = "Archived"
ARCHIVING_STAGES = ("Staging", "Production")  # where archive_existing may promote to
STAGE_ATTRIBUTES = ("current_stage", "stage")  # how filter strings name a version's stage
_CANONICAL = {s.lower(): s for s in STAGES}


def canonical(stage: str) -> str:
    """'production' → 'Production'; a UserError listing the stages otherwise."""
    found = _CANONICAL.get(str(stage).lower())
    if found is None:
        raise UserError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    return found


def plan(name: str, version: int, stage: str, *, archive_existing: bool = False,
         user_id: str = "", reason: str = "") -> StageChange:
    """The stage change a promotion asks for, checked against the stage rules."""
    target = canonical(stage)
    if archive_existing and target not in ARCHIVING_STAGES:
        raise UserError(f"archive_existing_versions needs a target stage of Staging or "
                        f"Production, not {target}")
    return StageChange(name, version, target, ARCHIVED if archive_existing else None,
                       user_id, reason, f"archived: version {version} moved to {target}")


def check_filter(filter_string: str | None) -> None:
    """Refuse a version search naming a stage that does not exist (`stage = 'Live'`)."""
    _check_stages(parse_filter(filter_string))


def _check_stages(tree: Filter | None) -> None:
    if isinstance(tree, BoolOp):
        for item in tree.items:
            _check_stages(item)
    elif tree is not None and tree.entity == "attribute" and tree.key in STAGE_ATTRIBUTES \
            and tree.op not in ("LIKE", "ILIKE"):
        for value in tree.value if isinstance(tree.value, tuple) else (tree.value,):
            canonical(str(value))
