"""Python models that ship code, and a record of whether that code ever ran.

Every module of a model written here appends its name to `sentinel` when it is
imported, so a test can tell whether loading (or a later import) ran the model's code.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

MODEL = '''
with open({sentinel!r}, "a") as f:
    f.write("{module}\\n")

import {module}_helpers
{at_import}


class Model:
    def __init__(self):
        {in_init}
        self.factor = 0

    def load_context(self, context):
        {in_load_context}
        self.factor = {module}_helpers.FACTOR

    def predict(self, model_input):
        import {module}_lazy  # a sibling imported only when predicting

        return [{module}_lazy.times(x, self.factor) for x in model_input]
'''

HELPERS = '''
with open({sentinel!r}, "a") as f:
    f.write("{module}_helpers\\n")

FACTOR = {factor}
'''

LAZY = '''
with open({sentinel!r}, "a") as f:
    f.write("{module}_lazy\\n")


def times(x, factor):
    return x * factor
'''

# where the model fails, for loads that must fail midway
FAILURES = {
    "at_import": "import flv_no_such_dependency",
    "in_init": 'raise RuntimeError("broken __init__")',
    "in_load_context": 'raise RuntimeError("broken load_context")',
}


@dataclass(frozen=True)
class CodeModel:
    """The files of a model's code: its class module and the helpers it imports."""

    module: str
    sentinel: Path
    files: list[Path]

    @property
    def class_path(self) -> str:
        return f"{self.module}:Model"

    def ran(self) -> list[str]:
        """The model's modules that were imported, in order."""
        return self.sentinel.read_text().split() if self.sentinel.exists() else []


def write_code(root: Path, module: str, *, fail: str | None = None,
               factor: int = 3) -> CodeModel:
    """A model's source files in `root`; `fail` (a FAILURES key) breaks it there."""
    root.mkdir(parents=True)
    sentinel = root.parent / f"{root.name}-ran.txt"
    holes = {key: "pass" for key in FAILURES}
    if fail is not None:
        holes[fail] = FAILURES[fail]
    files = {
        f"{module}.py": MODEL.format(sentinel=str(sentinel), module=module, **holes),
        f"{module}_helpers.py": HELPERS.format(sentinel=str(sentinel), module=module,
                                               factor=factor),
        f"{module}_lazy.py": LAZY.format(sentinel=str(sentinel), module=module),
    }
    for name, text in files.items():
        (root / name).write_text(text)
    return CodeModel(module, sentinel, [root / name for name in files])


def write_lookalike(root: Path, name: str) -> Path:
    """An ordinary module `name` (not the model's), for imports the model must not shadow."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.py").write_text("LOOKALIKE = True\n")
    return root


def forget_modules(prefix: str) -> None:
    for name in [m for m in sys.modules if m.startswith(prefix)]:
        del sys.modules[name]


def imports_snapshot() -> tuple[list[str], dict[str, ModuleType]]:
    return list(sys.path), dict(sys.modules)
