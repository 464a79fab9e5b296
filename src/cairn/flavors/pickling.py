"""Pickle, used only when asked for and loaded only when the caller trusts the model.

Unpickling runs whatever code the file names, so a pickle-based model MUST NOT be read
unless the caller passed ``trusted=True`` (CLI: ``--trust``): SPEC §10. Coming from the
project's digest-verified store vouches for a model's own code (flavors/pyfunc.py), never
for a pickle: the check is the caller's ``trusted`` alone.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from cairn.errors import FormatError, UserError


class UntrustedModelError(UserError):
    """A model whose loading could run arbitrary code, loaded without trusted=True."""

    def __init__(self, message: str, source: str) -> None:
        super().__init__(message)
        self.source = source


def refuse_pickle(source: str) -> UntrustedModelError:
    return UntrustedModelError(
        f"{source} is a pickle model; pickle can run arbitrary code when loaded — "
        f"pass trusted=True (CLI: --trust) if you trust its source", source)


def dump(obj: Any, path: Path) -> None:
    try:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        raise UserError(f"cannot pickle {type(obj).__name__}: {e}; define its class in an "
                        f"importable module (code_paths) rather than in __main__ or a "
                        f"function") from None
    path.write_bytes(data)


def load(path: Path, *, trusted: bool, source: str) -> Any:
    """Unpickle `path`, only if `trusted`."""
    if not trusted:
        raise refuse_pickle(source)
    try:
        with path.open("rb") as f:
            return pickle.load(f)  # the caller said trusted=True
    except FileNotFoundError:
        raise FormatError("the model's pickle file is missing", str(path)) from None
    except (ModuleNotFoundError, AttributeError) as e:
        raise UserError(f"{source}: cannot unpickle the model ({e}); install the package "
                        f"that defines its class, or save it with code_paths") from None
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise FormatError(f"the model's pickle is corrupt ({e})", str(path)) from None
