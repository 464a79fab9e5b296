"""Input examples saved beside a model, in formats that load without pickle.

numpy arrays → ``input_example.npy``, dicts of arrays → ``input_example.npz`` (both read
with ``allow_pickle=False``), DataFrames and lists of dicts → ``input_example.json``
(``{"columns": [...], "data": [[...], ...]}``, dtypes restored from the signature).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn.errors import FormatError, UserError
from cairn.flavors.signature import STRING, ColumnSchema, Schema, _is_records, _pandas

KINDS = {"ndarray": "input_example.npy", "tensors": "input_example.npz",
         "dataframe": "input_example.json"}


def write_example(directory: Path, example: Any) -> dict[str, str]:
    """Write `example` into `directory`; return its entry for cairn-model.yaml."""
    import numpy as np

    pd = _pandas()
    if pd is not None and isinstance(example, pd.Series):
        example = example.to_frame()
    if _is_records(example):
        if pd is None:
            raise UserError("a list of dicts as input example needs pandas; pip install pandas")
        example = pd.DataFrame(list(example))
    if pd is not None and isinstance(example, pd.DataFrame):
        body = {"columns": [str(c) for c in example.columns],
                "data": json.loads(example.to_json(orient="values", date_format="iso"))}
        (directory / KINDS["dataframe"]).write_text(json.dumps(body))
        return {"file": KINDS["dataframe"], "type": "dataframe"}
    if isinstance(example, Mapping):
        arrays = {str(k): _plain_array(np, v) for k, v in example.items()}
        np.savez(directory / KINDS["tensors"], allow_pickle=False, **arrays)
        return {"file": KINDS["tensors"], "type": "tensors"}
    np.save(directory / KINDS["ndarray"], _plain_array(np, example), allow_pickle=False)
    return {"file": KINDS["ndarray"], "type": "ndarray"}


def _plain_array(np: Any, value: Any) -> Any:
    array = np.asarray(value)
    if array.dtype.kind == "O":
        raise UserError(f"input example of dtype object (shape {array.shape}) cannot be "
                        f"saved without pickle; pass a numeric array or a DataFrame")
    return array


def read_example(directory: Path, entry: Mapping[str, Any], inputs: Schema | None) -> Any:
    """The example written by `write_example`, dtypes as in the signature when known."""
    import numpy as np

    kind = entry.get("type")
    path = directory / KINDS.get(str(kind), "?")
    if kind not in KINDS or entry.get("file") != KINDS[str(kind)]:
        raise FormatError(f"unknown input example {dict(entry)}", str(directory))
    try:
        if kind == "ndarray":
            return np.load(path, allow_pickle=False)
        if kind == "tensors":
            with np.load(path, allow_pickle=False) as archive:
                return {name: archive[name] for name in archive.files}
        return _read_frame(path, inputs)
    except (OSError, ValueError, KeyError) as e:
        raise FormatError(f"unreadable input example ({e})", str(path)) from None


def _read_frame(path: Path, inputs: Schema | None) -> Any:
    pd = _pandas()
    if pd is None:
        raise UserError("this model's input example is a DataFrame; pip install pandas")
    body = json.loads(path.read_text())
    frame = pd.DataFrame(body["data"], columns=body["columns"])
    if isinstance(inputs, ColumnSchema):
        for col in inputs.columns:
            if col.name in frame.columns and col.dtype != STRING:
                # the example is a hint; predict() enforces the schema
                with contextlib.suppress(TypeError, ValueError):
                    frame[col.name] = frame[col.name].astype(col.dtype)
    return frame
