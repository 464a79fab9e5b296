"""The permission vocabulary, READ < EDIT < MANAGE, shared by the registry's rules, the
server's authorization and the grants the store keeps. "*" grants to everyone else."""

from __future__ import annotations

from cairn.errors import UserError

LEVELS = ("READ", "EDIT", "MANAGE")
READ, EDIT, MANAGE = LEVELS
EVERYONE = "*"


def allows(level: str, needed: str) -> bool:
    """Whether `level` (or "NONE", or anything unknown: no) reaches `needed`."""
    return level in LEVELS and LEVELS.index(level) >= LEVELS.index(needed)


def check_level(level: str) -> str:
    """`level` in its canonical spelling, or a UserError naming the choices."""
    upper = str(level).upper()
    if upper not in LEVELS:
        raise UserError(f"unknown permission {level!r}; use one of {', '.join(LEVELS)}")
    return upper
