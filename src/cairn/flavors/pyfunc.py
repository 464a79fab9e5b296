"""Generic Python models: a class with ``predict``, its code and its artifacts.

Two ways to say which object predicts:

- ``python_model=obj`` — the instance is pickled (``python_model.pkl``), so loading it
  needs ``trusted=True``;
- ``python_model="module:ClassName"`` — only the name is stored; loading imports the
  module from the model's ``code/`` directory, calls ``ClassName()`` and then
  ``load_context(context)``. No pickle is read, but the model's own code runs, so it
  loads only with ``trusted=True`` or ``verified=True`` (materialized from the project's
  digest-verified store: a models:/ or runs:/ URI); the module has to be one of the
  model's ``code_paths`` (anything else needs ``trusted=True``).

Every trust check happens before the process is touched, so a refused load leaves
``sys.path`` and ``sys.modules`` as they were; so does a load that fails midway (import,
``__init__``, ``load_context``). While a model loads, its ``code/`` is first on sys.path;
afterwards it is last, so names installed elsewhere are never shadowed by it later, while
``predict`` can still import the model's own modules lazily (by names nothing else has).

``predict(self, context, model_input)`` (MLflow's PythonModel) and plain
``predict(self, model_input)`` are both accepted. ``context.artifacts[name]`` is the
path of the copy of each artifact inside the model directory.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import inspect
import os
import re
import shutil
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from cairn.errors import FormatError, UserError
from cairn.flavors import pickling
from cairn.flavors.base import (
    MODEL_FILE,
    LoadedModel,
    ModelMetadata,
    Predict,
    inside,
    load,
    new_model_dir,
    write_model_file,
)
from cairn.flavors.signature import Signature

FLAVOR = "pyfunc"
CODE_DIR = "code"
ARTIFACTS_DIR = "artifacts"
PICKLE_FILE = "python_model.pkl"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_CLASS_PATH = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*)\Z")


@dataclass
class PythonModelContext:
    """What ``load_context`` and ``predict`` receive: artifact paths by name."""

    artifacts: dict[str, str] = field(default_factory=dict)


class PythonModel:
    """Base class for generic models (subclassing is optional: any ``predict`` will do)."""

    def load_context(self, context: PythonModelContext) -> None:
        """Load artifacts once, after the model is created or unpickled."""

    def predict(self, context: PythonModelContext, model_input: Any) -> Any:
        raise NotImplementedError


def save_model(path: str | os.PathLike[str], *, python_model: Any,
               artifacts: Mapping[str, str | os.PathLike[str]] | None = None,
               code_paths: Sequence[str | os.PathLike[str]] | None = None,
               input_example: Any = None,
               signature: Signature | Mapping[str, Any] | None = None,
               metadata: Mapping[str, Any] | None = None,
               pip_requirements: list[str] | None = None) -> ModelMetadata:
    """Save a generic Python model as a new model directory at `path`."""
    artifacts = dict(artifacts or {})
    code = [Path(p) for p in code_paths or []]
    class_path = _check_python_model(python_model, code)
    with new_model_dir(path) as tmp:
        flavor: dict[str, Any] = {}
        if code:
            _copy_code(code, tmp / CODE_DIR)
            flavor["code"] = CODE_DIR
        if artifacts:
            flavor["artifacts"] = _copy_artifacts(artifacts, tmp)
        if class_path is None:
            pickling.dump(python_model, tmp / PICKLE_FILE)
            flavor["python_model"] = {"pickle": PICKLE_FILE}
        else:
            flavor["python_model"] = {"class": class_path}
        context = PythonModelContext({name: str(p) for name, p in artifacts.items()})
        return write_model_file(tmp, loader=FLAVOR, flavor=flavor, libraries=[],
                                predict=_save_time_predict(python_model, context),
                                input_example=input_example, signature=signature,
                                metadata=metadata, pip_requirements=pip_requirements)


def load_model(path: str | os.PathLike[str], *, trusted: bool = False,
               source: str | None = None) -> LoadedModel:
    """Any Cairn model (of any flavor) with a schema-checking ``predict``."""
    return load(path, trusted=trusted, source=source)


def _check_python_model(python_model: Any, code_paths: list[Path]) -> str | None:
    """The class path if `python_model` is one; refuse what cannot predict."""
    if isinstance(python_model, str):
        match = _CLASS_PATH.match(python_model)
        if match is None:
            raise UserError(f"python_model {python_model!r} must look like 'module:ClassName'")
        top = match.group(1).split(".")[0]
        if top not in {_module_name(p) for p in code_paths}:
            raise UserError(f"python_model {python_model!r}: module {top!r} is not among "
                            f"code_paths; add its file or package to code_paths")
        return python_model
    if not callable(getattr(python_model, "predict", None)):
        raise UserError(f"python_model {type(python_model).__name__} has no predict method")
    return None


def _module_name(path: Path) -> str:
    return path.stem if path.suffix == ".py" else path.name


def _copy_code(code_paths: list[Path], dest: Path) -> None:
    dest.mkdir()
    for source in code_paths:
        target = dest / source.name
        if target.exists():
            raise UserError(f"two code_paths are named {source.name!r}; rename one")
        if source.is_dir():
            shutil.copytree(source, target,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.is_file():
            shutil.copy2(source, target)
        else:
            raise UserError(f"code path {source} does not exist")


def _copy_artifacts(artifacts: Mapping[str, str | os.PathLike[str]], tmp: Path) -> dict[str, str]:
    stored = {}
    for name, source in artifacts.items():
        src = Path(source)
        if not _NAME.match(name) or name in (".", ".."):
            raise UserError(f"artifact name {name!r} must be letters, digits, '.', '_' or '-'")
        target = tmp / ARTIFACTS_DIR / name / src.name
        target.parent.mkdir(parents=True)
        if src.is_dir():
            shutil.copytree(src, target)
        elif src.is_file():
            shutil.copy2(src, target)
        else:
            raise UserError(f"artifact {name!r}: {src} does not exist")
        stored[name] = target.relative_to(tmp).as_posix()
    return stored


def _save_time_predict(python_model: Any, context: PythonModelContext) -> Predict | None:
    """A predict usable for output-schema inference without importing anything new."""
    if isinstance(python_model, str):
        module_name, _, class_name = python_model.partition(":")
        module = sys.modules.get(module_name)  # only code the caller already imported
        cls = getattr(module, class_name, None)
        if cls is None:
            return None
        try:
            python_model = cls()
            _call_load_context(python_model, context)
        except Exception:  # only for the optional output schema
            return None
    return bind_predict(python_model, context)


# --- loading ----------------------------------------------------------------------------

def load_flavor(root: Path, meta: ModelMetadata, *, trusted: bool, verified: bool,
                source: str) -> tuple[Any, Predict]:
    """Check everything, trust first, before the model's code touches the process."""
    flavor = meta.flavor
    code_dir = None if flavor.get("code") is None else _code_dir(root, flavor["code"])
    code_modules = set() if code_dir is None else _provided_modules(code_dir)
    artifacts = flavor.get("artifacts") or {}
    if not isinstance(artifacts, dict):
        raise FormatError("pyfunc 'artifacts' must be a mapping", str(root / MODEL_FILE))
    context = PythonModelContext({str(name): str(inside(root, rel, f"artifact {name!r}"))
                                  for name, rel in artifacts.items()})
    spec = flavor.get("python_model")
    if isinstance(spec, dict) and "class" in spec:
        module_name, class_name = _check_class(str(spec["class"]), code_modules,
                                               trusted=trusted, verified=verified,
                                               source=source)
        with _model_code(code_dir, code_modules):
            model = _instantiate(module_name, class_name, source)
            _call_load_context(model, context)
    elif isinstance(spec, dict) and "pickle" in spec:
        pickle_file = inside(root, spec["pickle"], "python model file")
        if not trusted:  # a verified store vouches for code, never for a pickle
            raise pickling.refuse_pickle(source)
        with _model_code(code_dir, code_modules):
            model = pickling.load(pickle_file, trusted=trusted, source=source)
            _call_load_context(model, context)
    else:
        raise FormatError("pyfunc 'python_model' must name a 'class' or a 'pickle' file",
                          str(root / MODEL_FILE))
    return model, bind_predict(model, context)


def _code_dir(root: Path, relative: Any) -> Path:
    code_dir = inside(root, relative, "code directory")
    if not code_dir.is_dir():
        raise FormatError(f"the code directory {relative!r} is missing", str(root / MODEL_FILE))
    return code_dir


def _provided_modules(code_dir: Path) -> set[str]:
    """The top-level module names importing from `code_dir` can resolve."""
    suffixes = importlib.machinery.all_suffixes()  # .py, .pyc, extension modules
    names = set()
    for entry in code_dir.iterdir():
        if entry.is_dir():
            names.add(entry.name)
        else:
            names.update(entry.name.removesuffix(s) for s in suffixes if entry.name.endswith(s))
    return names


def _check_class(class_path: str, code_modules: set[str], *, trusted: bool, verified: bool,
                 source: str) -> tuple[str, str]:
    """The module and class names, if this load may import them; else refuse."""
    match = _CLASS_PATH.match(class_path)
    if match is None:
        raise FormatError(f"pyfunc class {class_path!r} is not 'module:ClassName'", source)
    module_name, class_name = match.groups()
    if trusted:
        return module_name, class_name
    if module_name.split(".")[0] not in code_modules:
        raise pickling.UntrustedModelError(
            f"{source} names class {class_path!r} from outside its own code; pass "
            f"trusted=True (CLI: --trust) if you trust its source", source)
    if not verified:
        raise pickling.UntrustedModelError(
            f"{source} ships Python code ({class_path!r}) that would run on loading; pass "
            f"trusted=True (CLI: --trust) if you trust its source", source)
    return module_name, class_name


# One lock: two loads swapping sys.path and sys.modules at once would undo each other.
_IMPORTING = threading.RLock()


@contextlib.contextmanager
def _model_code(code_dir: Path | None, code_modules: set[str]) -> Iterator[None]:
    """The model's code first on sys.path for the block; if the block fails, sys.path and
    the model's module names in sys.modules are put back as they were."""
    if code_dir is None:
        yield
        return
    entry = str(code_dir)
    with _IMPORTING:
        path, modules = list(sys.path), dict(sys.modules)
        had_finder = entry in sys.path_importer_cache
        try:
            for name in code_modules:
                _forget_other_models_module(name, code_dir)
            _move_on_path(entry, first=True)
            yield
        except BaseException:
            sys.path[:] = path
            _restore_modules(modules, code_modules)
            if not had_finder:
                sys.path_importer_cache.pop(entry, None)
            raise
        # Last, not gone: predict's lazy imports of the model's own modules still resolve,
        # while every name something else provides is no longer shadowed by the model.
        _move_on_path(entry, first=False)


def _move_on_path(entry: str, *, first: bool) -> None:
    while entry in sys.path:
        sys.path.remove(entry)
    if first:
        sys.path.insert(0, entry)
    else:
        sys.path.append(entry)
    importlib.invalidate_caches()


def _restore_modules(before: Mapping[str, ModuleType], names: set[str]) -> None:
    """sys.modules as in `before` for every module under one of the top-level `names`."""
    def ours(module_name: str) -> bool:
        return module_name.partition(".")[0] in names

    for name in [m for m in sys.modules if ours(m) and m not in before]:
        del sys.modules[name]
    for name, module in before.items():
        if ours(name) and sys.modules.get(name) is not module:
            sys.modules[name] = module


def _forget_other_models_module(name: str, code_dir: Path) -> None:
    """Unload `name` if another model's code defined it, so this model gets its own.

    Objects already created from the old module keep working; only the name is freed.
    """
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    if module is None or file is None:
        return
    origin = Path(file).resolve()
    owner = next((p for p in origin.parents if p.name == CODE_DIR
                  and (p.parent / MODEL_FILE).is_file()), None)
    if owner is not None and owner != code_dir.resolve():
        for loaded in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            del sys.modules[loaded]


def _instantiate(module_name: str, class_name: str, source: str) -> Any:
    class_path = f"{module_name}:{class_name}"
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as e:
        raise UserError(f"{source}: cannot import {class_path!r} ({e})") from None
    if not isinstance(cls, type):
        raise UserError(f"{source}: {class_path!r} is not a class")
    return cls()


def _call_load_context(model: Any, context: PythonModelContext) -> None:
    load_context = getattr(model, "load_context", None)
    if callable(load_context):
        load_context(context)


def bind_predict(model: Any, context: PythonModelContext) -> Predict:
    """model.predict as a one-argument function, passing `context` if it takes one."""
    predict = model.predict
    try:
        params = [p for p in inspect.signature(predict).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    required = [p for p in params if p.default is p.empty]
    if len(required) >= 2 or (params and params[0].name == "context"):
        return lambda data: predict(context, data)
    return lambda data: predict(data)
