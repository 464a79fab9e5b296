"""Who may do what on a registered model: READ < EDIT < MANAGE.

    READ    see it (everyone, in embedded mode)
    EDIT    register versions, promote through the gates, open requests
    MANAGE  approve and reject requests, set gates and permissions, move protected
            aliases, delete versions, `--force`

A user's level is their own grant, else the grant to "*" (everyone else), else EDIT —
or MANAGE on a model nobody manages (one created before permissions existed, or by
an unnamed user). The creator of a model holds MANAGE on it from the start.
"""

from __future__ import annotations

from cairn.errors import PermissionDenied
from cairn.store.base import MetadataStore
from cairn.store.levels import EVERYONE, LEVELS, allows, check_level

__all__ = ["EVERYONE", "LEVELS", "allows", "check_level", "level_of", "require"]

DEFAULT = "EDIT"


def level_of(store: MetadataStore, name: str, user: str) -> str:
    grants = store.get_permissions(name)
    if user in grants:
        return grants[user]
    if EVERYONE in grants:
        return grants[EVERYONE]
    return DEFAULT if "MANAGE" in grants.values() else "MANAGE"


def require(store: MetadataStore, name: str, user: str, needed: str, doing: str) -> str:
    """The user's level on `name`; PermissionDenied if it is below `needed`."""
    level = level_of(store, name, user)
    if not allows(level, needed):
        raise PermissionDenied(
            f"{user} holds {level} on model '{name}'; {doing} needs {needed} — ask a MANAGE "
            f"holder (`cairn models permissions {name}` lists them) to grant it or act")
    return level
