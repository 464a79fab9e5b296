"""The saved-model directory: how every flavor writes one, and how any of them is loaded.

A model directory holds ``cairn-model.yaml`` (format ``cairn-model/1``, see
docs/formats.md "Saved model directory") and the flavor's files. It is built in a
hidden temp sibling and renamed into place, so a target either does not exist or is whole.
``load`` reads the yaml, dispatches to the flavor it names (from a fixed table: a model
file never chooses which module to import) and wraps the result in a ``LoadedModel``
whose ``predict`` enforces the saved input schema.

Trust (SPEC §10): ``trusted=True`` allows whatever loading a model can run (unpickling,
its own code); ``verified=True`` says the directory was materialized from digest-verified
objects of the project's own store (registry/loading.py, for models:/ and runs:/ URIs),
which allows a model's own code — never a pickle. Both are plain keyword arguments,
passed down explicitly; nothing is inferred from where a directory lies.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cairn import yamlfile
from cairn.errors import FormatError, NotFoundError, PathError, UserError
from cairn.flavors.signature import Signature, enforce, infer_schema
from cairn.fsutil import fsync_dir

MODEL_FILE = "cairn-model.yaml"
FORMAT_NAME = "cairn-model"
FORMAT_VERSION = 1
FORMAT = f"{FORMAT_NAME}/{FORMAT_VERSION}"
REQUIREMENTS_FILE = "requirements.txt"

# loader name in cairn-model.yaml -> module; never import a name read from a file
LOADERS = {"sklearn": "cairn.flavors.sklearn", "pyfunc": "cairn.flavors.pyfunc",
           "onnx": "cairn.flavors.onnx"}
# loaders that may import code shipped in the model directory: only they take `verified`
RUNS_MODEL_CODE = frozenset({"pyfunc"})

Predict = Callable[[Any], Any]


@dataclass
class ModelMetadata:
    """The contents of cairn-model.yaml, plus lineage the registry attaches on load."""

    loader: str
    flavors: dict[str, dict[str, Any]]
    created: str
    cairn_version: str
    python_version: str
    library_versions: dict[str, str] = field(default_factory=dict)
    requirements: list[str] = field(default_factory=list)
    signature: Signature | None = None
    input_example: dict[str, str] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT
    lineage: dict[str, Any] = field(default_factory=dict)  # never written by save_model

    @property
    def flavor(self) -> dict[str, Any]:
        """The fields of the flavor that loads this model."""
        return self.flavors[self.loader]

    def with_lineage(self, lineage: Mapping[str, Any]) -> ModelMetadata:
        return replace(self, lineage={**self.lineage, **lineage})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": self.format, "loader": self.loader, "flavors": self.flavors,
            "created": self.created, "cairn_version": self.cairn_version,
            "python_version": self.python_version, "library_versions": self.library_versions,
            "requirements": self.requirements}
        if self.signature is not None:
            out["signature"] = self.signature.to_dict()
        if self.input_example is not None:
            out["input_example"] = self.input_example
        if self.metadata:
            out["metadata"] = self.metadata
        if self.lineage:
            out["lineage"] = self.lineage
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str) -> ModelMetadata:
        if not isinstance(data, dict):
            raise FormatError("not a mapping", where)
        _check_format(data.get("format"), where)
        loader = data.get("loader")
        if loader not in LOADERS:
            raise FormatError(f"unknown loader {loader!r} (this Cairn knows "
                              f"{', '.join(sorted(LOADERS))})", where)
        flavors = data.get("flavors")
        if not isinstance(flavors, dict) or not isinstance(flavors.get(loader), dict):
            raise FormatError(f"'flavors' has no entry for loader {loader!r}", where)
        signature = data.get("signature")
        try:
            return cls(
                loader=loader, flavors=flavors, created=str(data.get("created", "")),
                cairn_version=str(data.get("cairn_version", "")),
                python_version=str(data.get("python_version", "")),
                library_versions=dict(data.get("library_versions") or {}),
                requirements=[str(r) for r in data.get("requirements") or []],
                signature=None if signature is None else Signature.from_dict(signature, where),
                input_example=_example_entry(data.get("input_example"), where),
                metadata=dict(data.get("metadata") or {}), format=data["format"],
                lineage=dict(data.get("lineage") or {}))
        except (TypeError, ValueError) as e:
            raise FormatError(f"malformed field ({e})", where) from None


def _check_format(value: Any, where: str) -> None:
    name, _, version = str(value).partition("/")
    if name != FORMAT_NAME or not version.isdigit():
        raise FormatError(f"'format' is {value!r}, expected {FORMAT!r}; "
                          f"not a Cairn model file", where)
    if int(version) > FORMAT_VERSION:
        raise FormatError(f"model format {value} is newer than this Cairn understands "
                          f"({FORMAT}); upgrade Cairn to load it", where)


def _example_entry(value: Any, where: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("file"), str):
        raise FormatError("'input_example' must be a mapping with 'file' and 'type'", where)
    return {str(k): str(v) for k, v in value.items()}


class FlavorLoader(Protocol):
    def __call__(self, root: Path, meta: ModelMetadata, *, trusted: bool,
                 source: str) -> tuple[Any, Predict]: ...


class CodeFlavorLoader(Protocol):
    """A loader in RUNS_MODEL_CODE: also told whether the directory is store-verified."""

    def __call__(self, root: Path, meta: ModelMetadata, *, trusted: bool, verified: bool,
                 source: str) -> tuple[Any, Predict]: ...


class LoadedModel:
    """A loaded model: ``predict`` checks its input against the saved signature first."""

    def __init__(self, path: Path, metadata: ModelMetadata, native: Any,
                 predict: Predict) -> None:
        self.path = path
        self.metadata = metadata
        self._native = native
        self._predict = predict

    @property
    def signature(self) -> Signature | None:
        return self.metadata.signature

    @property
    def input_example(self) -> Any:
        """The example saved with the model, or None."""
        from cairn.flavors.example import read_example

        entry = self.metadata.input_example
        if entry is None:
            return None
        inputs = None if self.signature is None else self.signature.inputs
        return read_example(self.path, entry, inputs)

    def predict(self, data: Any) -> Any:
        if self.signature is not None:
            data = enforce(self.signature.inputs, data)
        return self._predict(data)

    def unwrap(self) -> Any:
        """The model object of its own library (estimator, python model, ONNX session)."""
        return self._native

    def __repr__(self) -> str:
        return f"<LoadedModel {self.metadata.loader} from {self.path}>"


# --- loading ----------------------------------------------------------------------------

def read_metadata(path: str | os.PathLike[str]) -> ModelMetadata:
    import yaml

    root = Path(path)
    model_file = root / MODEL_FILE
    if not root.exists():
        raise NotFoundError(f"no model at {root}")
    try:
        text = model_file.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise FormatError(f"not a Cairn model directory (no {MODEL_FILE})", str(root)) from None
    except UnicodeDecodeError:
        raise FormatError("not UTF-8 text", str(model_file)) from None
    try:
        data = yamlfile.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise FormatError(f"invalid YAML ({getattr(e, 'problem', e)})", str(model_file),
                          None if mark is None else mark.line + 1) from None
    return ModelMetadata.from_dict(data, str(model_file))


def load(path: str | os.PathLike[str], *, trusted: bool = False,
         source: str | None = None, verified: bool = False) -> LoadedModel:
    """Load any Cairn model directory. `source` names it in errors (e.g. a models:/ URI);
    `verified` only for a directory materialized from the project's verified store."""
    root = Path(path)
    return _load(root, read_metadata(root), trusted=trusted, verified=verified,
                 source=source or str(path))


def _load(root: Path, meta: ModelMetadata, *, trusted: bool, verified: bool,
          source: str) -> LoadedModel:
    module = importlib.import_module(LOADERS[meta.loader])
    if meta.loader in RUNS_MODEL_CODE:
        code_loader: CodeFlavorLoader = module.load_flavor
        native, predict = code_loader(root, meta, trusted=trusted, verified=verified,
                                      source=source)
    else:
        loader: FlavorLoader = module.load_flavor
        native, predict = loader(root, meta, trusted=trusted, source=source)
    return LoadedModel(root, meta, native, predict)


def inside(root: Path, relative: Any, what: str) -> Path:
    """`root / relative`, refusing any name that leaves `root` (.., absolute, symlinks)."""
    if not isinstance(relative, str) or not relative or os.path.isabs(relative) \
            or ".." in Path(relative).parts:
        raise PathError(f"{what} {relative!r} in {root / MODEL_FILE} must be a relative path "
                        f"inside the model directory", str(relative))
    target = root / relative
    if not target.resolve().is_relative_to(root.resolve()):
        raise PathError(f"{what} {relative!r} in {root / MODEL_FILE} leaves the model "
                        f"directory (symlink)", str(relative))
    return target


# --- saving -----------------------------------------------------------------------------

@contextlib.contextmanager
def new_model_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp directory that becomes `path` when the block succeeds, else vanishes."""
    target = Path(path)
    _refuse_existing(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield tmp
        _fsync_tree(tmp)
        try:
            os.rename(tmp, target)  # replaces only an empty directory, atomically
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise _exists(target) from None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(target.parent)


def _refuse_existing(target: Path) -> None:
    if target.is_dir() and not any(target.iterdir()):
        return
    if target.exists() or target.is_symlink():
        raise _exists(target)


def _exists(target: Path) -> UserError:
    return UserError(f"{target} already exists; save a model into a new or empty directory")


def _fsync_tree(root: Path) -> None:
    """Every file's bytes on disk before the directory gets its final name."""
    for dirpath, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def write_model_file(directory: Path, *, loader: str, flavor: dict[str, Any],
                     libraries: list[str], predict: Predict | None, input_example: Any,
                     signature: Signature | Mapping[str, Any] | None,
                     metadata: Mapping[str, Any] | None,
                     pip_requirements: list[str] | None) -> ModelMetadata:
    """Write cairn-model.yaml, the input example and requirements.txt into `directory`."""
    import yaml

    from cairn.flavors.example import write_example

    versions = {name: version for name in ["numpy", *libraries]
                if (version := _version(name)) is not None}
    requirements = list(pip_requirements) if pip_requirements is not None else [
        f"{name}=={versions[name]}" for name in libraries if name in versions]
    meta = ModelMetadata(
        loader=loader, flavors={loader: flavor},
        created=build_time().strftime("%Y-%m-%dT%H:%M:%SZ"),
        cairn_version=_cairn_version(), python_version=platform.python_version(),
        library_versions=versions, requirements=requirements,
        signature=resolve_signature(signature, input_example, predict),
        input_example=None if input_example is None else write_example(directory,
                                                                       input_example),
        metadata=dict(metadata or {}))
    try:
        text = yamlfile.dump(meta.to_dict(), allow_unicode=True)
    except yaml.YAMLError as e:
        raise UserError(f"metadata must hold plain values (str, int, float, bool, lists, "
                        f"dicts): {e}") from None
    (directory / MODEL_FILE).write_text(text, encoding="utf-8")
    (directory / REQUIREMENTS_FILE).write_text("".join(f"{r}\n" for r in requirements))
    return meta


def build_time() -> datetime:
    """When a model is saved: now, or SOURCE_DATE_EPOCH when set (the reproducible-builds
    convention), so a rebuild can write the same bytes; `cairn reproduce` sets it."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC)
    return datetime.now(UTC)


def resolve_signature(signature: Signature | Mapping[str, Any] | None, input_example: Any,
                      predict: Predict | None) -> Signature | None:
    """The signature given, else one inferred from the example (outputs by predicting)."""
    if isinstance(signature, Signature):
        return signature
    if signature is not None:
        return Signature.from_dict(signature)
    if input_example is None:
        return None
    inputs = infer_schema(input_example)
    outputs = None
    if predict is not None:
        try:  # predict as LoadedModel.predict will: on the conformed example
            outputs = infer_schema(predict(enforce(inputs, input_example)))
        except Exception:  # the output schema is optional; the input schema is not
            outputs = None
    return Signature(inputs, outputs)


def _version(distribution: str) -> str | None:
    from importlib import metadata as importlib_metadata  # slow to import; needed on save

    try:
        return importlib_metadata.version(distribution)
    except importlib_metadata.PackageNotFoundError:
        return None


def _cairn_version() -> str:
    from cairn import __version__

    return __version__


def load_native(path: str | os.PathLike[str], loader: str, *, trusted: bool,
                source: str | None) -> Any:
    """The native object of a model saved by flavor `loader` (e.g. the sklearn estimator)."""
    root = Path(path)
    meta = read_metadata(root)
    if meta.loader != loader:  # refused before the other flavor loads (and runs) anything
        raise UserError(f"{source or path} is a {meta.loader} model, not {loader}; "
                        f"load it with cairn.pyfunc.load_model")
    return _load(root, meta, trusted=trusted, verified=False,
                 source=source or str(path)).unwrap()
