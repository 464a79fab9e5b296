"""scikit-learn models: skops by default (loads without pickle), pickle on request.

A skops file lists the types it will create. Loading trusts those from scikit-learn,
numpy and scipy (classes, and numpy ufuncs) and refuses any other, naming it, unless the
caller passes ``trusted=True``. Types that skops itself flags as unsafe to trust (tree
node storage read without bounds checks) are refused too: a crafted file could make
``predict`` read out of bounds.
"""

from __future__ import annotations

import importlib
import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn.errors import FormatError, UserError
from cairn.flavors import pickling
from cairn.flavors.base import (
    ModelMetadata,
    Predict,
    inside,
    load_native,
    new_model_dir,
    write_model_file,
)
from cairn.flavors.signature import Signature

FLAVOR = "sklearn"
FORMATS = {"skops": "model.skops", "pickle": "model.pkl"}
TRUSTED_PACKAGES = ("sklearn", "numpy", "scipy")


def save_model(sk_model: Any, path: str | os.PathLike[str], *,
               serialization_format: str = "skops", input_example: Any = None,
               signature: Signature | Mapping[str, Any] | None = None,
               metadata: Mapping[str, Any] | None = None,
               pip_requirements: list[str] | None = None) -> ModelMetadata:
    """Save `sk_model` as a new model directory at `path`."""
    if serialization_format not in FORMATS:
        raise UserError(f"unknown serialization_format {serialization_format!r}; "
                        f"use one of {', '.join(FORMATS)}")
    if not callable(getattr(sk_model, "predict", None)):
        raise UserError(f"{type(sk_model).__name__} has no predict method; "
                        f"pass a fitted scikit-learn estimator")
    with new_model_dir(path) as tmp:
        file = FORMATS[serialization_format]
        if serialization_format == "skops":
            _dump_skops(sk_model, tmp / file)
        else:
            pickling.dump(sk_model, tmp / file)
        libraries = ["scikit-learn", "scipy"] + (
            ["skops"] if serialization_format == "skops" else [])
        flavor = {"file": file, "serialization_format": serialization_format}
        return write_model_file(tmp, loader=FLAVOR, flavor=flavor, libraries=libraries,
                                predict=sk_model.predict, input_example=input_example,
                                signature=signature, metadata=metadata,
                                pip_requirements=pip_requirements)


def _dump_skops(sk_model: Any, file: Path) -> None:
    import skops.io as sio

    try:
        sio.dump(sk_model, file)
    except TypeError as e:  # skops' UnsupportedTypeException
        raise UserError(f"skops cannot save {type(sk_model).__name__} ({e}); "
                        f"use serialization_format='pickle'") from None
    normalize_zip(file)


def normalize_zip(file: Path) -> None:
    """Rewrite a skops file so the same model always gives the same bytes.

    skops names objects by their `id()` in the saving process (a memory address, in
    `__id__` and in the names of the array files) and stamps each zip entry with the
    clock: the same model saved twice would be two files with two digests, and no
    rebuild could ever match. The ids are renumbered in order of appearance (a
    one-to-one renaming, so shared references stay shared) and the entry times fixed.
    """
    import json
    import zipfile

    with zipfile.ZipFile(file) as source:
        entries = {info.filename: (info, source.read(info)) for info in source.infolist()}
    if "schema.json" not in entries:
        return
    numbers: dict[str, str] = {}

    def renumber(value: object) -> str:
        return numbers.setdefault(str(value), str(len(numbers) + 1))

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int):
                    out[key] = int(renumber(value))
                elif key == "file" and isinstance(value, str) and value in entries:
                    stem, dot, ext = value.partition(".")
                    out[key] = renumber(stem) + dot + ext
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    schema = walk(json.loads(entries["schema.json"][1]))
    renamed = {"schema.json": json.dumps(schema, indent=2).encode()}
    for name, (_, data) in entries.items():
        if name != "schema.json":
            stem, dot, ext = name.partition(".")
            renamed[(numbers.get(stem, stem) + dot + ext) if stem in numbers else name] = data
    fixed = file.with_name(file.name + ".tmp")
    with zipfile.ZipFile(fixed, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for name in sorted(renamed):
            stable = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            stable.compress_type = zipfile.ZIP_DEFLATED
            stable.external_attr = 0o644 << 16
            target.writestr(stable, renamed[name])
    os.replace(fixed, file)


def load_model(path: str | os.PathLike[str], *, trusted: bool = False,
               source: str | None = None) -> Any:
    """The scikit-learn estimator saved at `path`."""
    return load_native(path, FLAVOR, trusted=trusted, source=source)


def load_flavor(root: Path, meta: ModelMetadata, *, trusted: bool,
                source: str) -> tuple[Any, Predict]:
    fmt = meta.flavor.get("serialization_format")
    if fmt not in FORMATS:
        raise FormatError(f"unknown sklearn serialization_format {fmt!r}", str(root))
    file = inside(root, meta.flavor.get("file"), "model file")
    if fmt == "pickle":
        model = pickling.load(file, trusted=trusted, source=source)
    else:
        model = _load_skops(file, trusted=trusted, source=source)
    return model, model.predict


def _load_skops(file: Path, *, trusted: bool, source: str) -> Any:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=file)
        if not trusted:
            refused = [name for name in untrusted if not is_allowed_type(name)]
            if refused:
                raise pickling.UntrustedModelError(
                    f"{source} would create types Cairn does not trust by default: "
                    f"{', '.join(refused)} — pass trusted=True (CLI: --trust) if you trust "
                    f"its source", source)
        return sio.load(file, trusted=untrusted)
    except FileNotFoundError:
        raise FormatError("the model's skops file is missing", str(file)) from None
    except (ImportError, AttributeError) as e:  # a trusted type from a package not installed
        raise UserError(f"{source}: cannot create the model ({e}); install the packages in "
                        f"its requirements.txt") from None
    except (zipfile.BadZipFile, json.JSONDecodeError, KeyError, ValueError) as e:
        raise FormatError(f"the model's skops file is corrupt ({e!r})", str(file)) from None


def is_allowed_type(name: str) -> bool:
    """Whether the skops type `name` may be created without trusted=True."""
    from skops.io.exceptions import UNTRUSTED_TYPE_REASONS

    if name.split(".")[0] not in TRUSTED_PACKAGES or name in UNTRUSTED_TYPE_REASONS:
        return False
    obj = _resolve(name)
    if isinstance(obj, type):
        return True
    import numpy as np

    return isinstance(obj, np.ufunc)  # e.g. FunctionTransformer(np.log1p)


def _resolve(name: str) -> Any:
    """The object `name` names, importing only modules of the trusted packages."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
        return obj
    return None
