"""Model signatures: what a model takes and returns, inferred from examples and enforced.

A schema is either named columns (pandas; lists of dicts become a DataFrame) or tensors
(numpy: dtype and shape, ``-1`` for the batch dimension; several named tensors for a
model with several inputs). ``enforce`` turns what a caller passes into what the model
was saved with, or raises one ``SchemaError`` naming the column or tensor at fault.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cairn.errors import FormatError, UserError

STRING = "string"  # one name for str, string and object-of-str columns


class SchemaError(UserError):
    """Input data that does not match the model's signature."""


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    dtype: str


@dataclass(frozen=True)
class TensorSpec:
    dtype: str
    shape: tuple[int, ...]
    name: str | None = None


@dataclass(frozen=True)
class ColumnSchema:
    columns: tuple[ColumnSpec, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [{"name": c.name, "dtype": c.dtype} for c in self.columns]}


@dataclass(frozen=True)
class TensorSchema:
    tensors: tuple[TensorSpec, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"tensors": [{**({"name": t.name} if t.name is not None else {}),
                             "dtype": t.dtype, "shape": list(t.shape)} for t in self.tensors]}


Schema = ColumnSchema | TensorSchema


@dataclass(frozen=True)
class Signature:
    inputs: Schema
    outputs: Schema | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"inputs": self.inputs.to_dict()}
        if self.outputs is not None:
            out["outputs"] = self.outputs.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any, path: str | None = None) -> Signature:
        """The signature `data` describes; `path` names the file it came from in errors."""
        if not isinstance(data, Mapping) or "inputs" not in data:
            raise FormatError("signature must be a mapping with 'inputs'", path)
        outputs = data.get("outputs")
        return cls(schema_from_dict(data["inputs"], "signature.inputs", path),
                   None if outputs is None
                   else schema_from_dict(outputs, "signature.outputs", path))


def schema_from_dict(data: Any, where: str, path: str | None = None) -> Schema:
    try:
        if "columns" in data:
            return ColumnSchema(tuple(ColumnSpec(str(c["name"]), str(c["dtype"]))
                                      for c in data["columns"]))
        tensors = tuple(TensorSpec(str(t["dtype"]), tuple(int(d) for d in t["shape"]),
                                   None if t.get("name") is None else str(t["name"]))
                        for t in data["tensors"])
    except (TypeError, KeyError, ValueError, AttributeError) as e:
        raise FormatError(f"{where} is malformed ({e!r}); expected 'columns' or 'tensors'",
                          path) from None
    if not tensors:
        raise FormatError(f"{where} names no tensor", path)
    return TensorSchema(tensors)


# --- inference ------------------------------------------------------------------------

def infer_signature(model_input: Any, model_output: Any = None) -> Signature:
    """The signature of a model called with `model_input` (and returning `model_output`)."""
    outputs = None if model_output is None else infer_schema(model_output)
    return Signature(infer_schema(model_input), outputs)


def infer_schema(data: Any) -> Schema:
    import numpy as np

    pd = _pandas()
    if pd is not None and isinstance(data, pd.Series):
        data = data.to_frame()
    if pd is not None and isinstance(data, pd.DataFrame):
        return ColumnSchema(tuple(ColumnSpec(str(name), _column_dtype(data[name]))
                                  for name in data.columns))
    if _is_records(data):
        if pd is None:
            raise UserError("a list of dicts as input example needs pandas; pip install pandas")
        return infer_schema(pd.DataFrame(list(data)))
    if isinstance(data, Mapping):
        return TensorSchema(tuple(_tensor_spec(np.asarray(v), str(k)) for k, v in data.items()))
    return TensorSchema((_tensor_spec(np.asarray(data), None),))


def _tensor_spec(array: Any, name: str | None) -> TensorSpec:
    if array.dtype.kind == "O" or array.ndim == 0:
        raise UserError(f"cannot infer a signature from {array.dtype} array of shape "
                        f"{array.shape}; pass a numeric array, a DataFrame or signature=")
    dtype = STRING if array.dtype.kind == "U" else str(array.dtype)
    return TensorSpec(dtype, (-1, *array.shape[1:]), name)


def _column_dtype(column: Any) -> str:
    if _is_string_column(column):
        return STRING
    return str(column.dtype)


def _is_string_column(column: Any) -> bool:
    pd = _pandas()
    assert pd is not None
    if pd.api.types.is_string_dtype(column.dtype) and column.dtype.kind != "O":
        return True
    if column.dtype.kind == "O":
        values = column.dropna()
        return len(values) > 0 and all(isinstance(v, str) for v in values)
    return False


def _is_records(data: Any) -> bool:
    return isinstance(data, Sequence) and not isinstance(data, str | bytes) and len(data) > 0 \
        and all(isinstance(row, Mapping) for row in data)


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        return None
    return pandas


# --- enforcement ----------------------------------------------------------------------

def enforce(schema: Schema, data: Any) -> Any:
    """`data` conformed to `schema`: columns selected, ordered and safely cast."""
    if isinstance(schema, ColumnSchema):
        return _enforce_columns(schema, data)
    return _enforce_tensors(schema, data)


def _enforce_columns(schema: ColumnSchema, data: Any) -> Any:
    pd = _pandas()
    if pd is None:
        raise UserError("this model takes named columns; pip install pandas to call it")
    names = [c.name for c in schema.columns]
    frame = _as_frame(pd, data, names)
    labels = {str(label): label for label in frame.columns}  # the schema stores names as str
    missing = [n for n in names if n not in labels]
    if missing:
        raise SchemaError(f"input is missing column {', '.join(map(repr, missing))}; "
                          f"the model expects columns {names}")
    # extra columns are dropped, as MLflow does; labels keep their type (0, not "0")
    cast = {labels[c.name]: _cast(frame[labels[c.name]], c.dtype, f"column {c.name!r}")
            for c in schema.columns}
    return pd.DataFrame(cast, index=frame.index)


def _as_frame(pd: Any, data: Any, names: list[str]) -> Any:
    import numpy as np

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if _is_records(data) or isinstance(data, Mapping):
        return pd.DataFrame(list(data) if _is_records(data) else dict(data))
    array = np.asarray(data)
    if array.ndim == 2 and array.shape[1] == len(names):
        return pd.DataFrame(array, columns=names)  # positional: the columns in saved order
    raise SchemaError(f"input of shape {array.shape} does not fit the model's "
                      f"{len(names)} columns {names}; pass a DataFrame")


def _enforce_tensors(schema: TensorSchema, data: Any) -> Any:
    specs = schema.tensors
    if len(specs) == 1 and not isinstance(data, Mapping):
        return _check_tensor(specs[0], data)
    if not isinstance(data, Mapping):
        raise SchemaError(f"the model takes {len(specs)} named inputs "
                          f"{[s.name for s in specs]}; pass a dict of arrays")
    missing = [s.name for s in specs if s.name not in data]
    if missing:
        raise SchemaError(f"input is missing tensor {', '.join(map(repr, missing))}; "
                          f"the model expects {[s.name for s in specs]}")
    return {s.name: _check_tensor(s, data[s.name]) for s in specs}


def _check_tensor(spec: TensorSpec, data: Any) -> Any:
    import numpy as np

    pd = _pandas()
    if pd is not None and isinstance(data, pd.DataFrame | pd.Series):
        data = data.to_numpy()
    array = np.asarray(data)
    what = "input" if spec.name is None else f"input {spec.name!r}"
    expected = tuple("any" if d == -1 else d for d in spec.shape)
    if array.ndim != len(spec.shape) or any(
            want not in (-1, got) for want, got in zip(spec.shape, array.shape, strict=True)):
        raise SchemaError(f"{what} has shape {array.shape}, the model expects {expected}")
    return _cast(array, spec.dtype, what)


def _cast(values: Any, dtype: str, what: str) -> Any:
    """`values` as `dtype` if no value changes on the way; else SchemaError."""
    import numpy as np

    got = _column_dtype(values) if hasattr(values, "dtype") and _is_series(values) \
        else (STRING if values.dtype.kind == "U" else str(values.dtype))
    if got == dtype:
        return values
    if dtype == STRING or got == STRING:
        raise _bad_dtype(what, got, dtype)
    try:
        source, target = np.dtype(got), np.dtype(dtype)
    except TypeError:
        raise _bad_dtype(what, got, dtype) from None
    exact = source.kind == target.kind or (source.kind == "b" and target.kind != "f")
    if exact and np.can_cast(source, target, casting="safe"):
        return values.astype(target)
    # numpy calls int64 -> float64 safe; check values instead (2**53 + 1 is not a float)
    if source.kind in "biuf" and target.kind in "iuf" and not (
            source.kind == "f" and target.kind in "iu"):
        converted = values.astype(target)
        if _same_values(np, values, converted, narrowing_float=source.kind == target.kind == "f"):
            return converted
        raise SchemaError(f"{what} has dtype {got} with values that do not fit {dtype}")
    raise _bad_dtype(what, got, dtype)


def _same_values(np: Any, before: Any, after: Any, narrowing_float: bool) -> bool:
    before, after = np.asarray(before), np.asarray(after)
    if narrowing_float:  # float64 -> float32 loses digits by design; only overflow is wrong
        return bool(np.array_equal(np.isfinite(before), np.isfinite(after)))
    with np.errstate(invalid="ignore"):
        return bool(np.array_equal(before, after.astype(before.dtype)))


def _is_series(values: Any) -> bool:
    pd = _pandas()
    return pd is not None and isinstance(values, pd.Series)


def _bad_dtype(what: str, got: str, dtype: str) -> SchemaError:
    return SchemaError(f"{what} has dtype {got}, the model expects {dtype}; "
                       f"it cannot be converted without changing values")
