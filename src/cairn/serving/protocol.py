"""MLflow's scoring protocol: request bodies → model inputs, predictions → the answer.

A JSON body is an object holding exactly one of ``dataframe_split``,
``dataframe_records``, ``instances`` or ``inputs`` (and optionally ``params``); a CSV
body is a header row and rows of values. The answer is ``{"predictions": …}``: an array
as nested lists, a DataFrame as a list of records (MLflow's encoding).

What the model is called with follows its input schema, so pandas stays optional: a
model with named columns gets a DataFrame (pandas is then required, as for
``LoadedModel.predict``); a model with tensors gets numpy arrays (a dict of them for
named tensors); a model with no schema gets a DataFrame for the tabular formats when
pandas is installed and arrays otherwise. Every request is parsed into an `Inputs`,
which batching.py can concatenate with others of the same `key` and split back.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cairn.errors import UserError
from cairn.flavors.signature import ColumnSchema, Schema, SchemaError, TensorSchema

JSON = "application/json"
CSV = "text/csv"
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
PARAMS = "params"

TABLE, ARRAY, TENSORS = "table", "array", "tensors"


class BadRequest(UserError):
    """A request the server cannot read: answered with `status` and one message."""

    status = 400


class UnsupportedMediaType(BadRequest):
    status = 415


@dataclass(frozen=True)
class Table:
    """Rows of values under column names (None: positional, for a model with no schema)."""

    columns: tuple[str, ...] | None
    rows: list[list[Any]]
    # For a model with no schema, each column's cell types: rows are merged before pandas
    # infers a column's type, so tables batch together only when that cannot change it
    # (one request's strings must not make another's numbers objects). None with a schema,
    # which fixes the types.
    cells: tuple[frozenset[type], ...] | None = None


@dataclass(frozen=True)
class Inputs:
    """One request's model input: a `Table`, an array, or a dict of named arrays."""

    kind: str
    value: Any
    rows: int | None  # None: cannot be batched with others (a scalar, ragged tensors)

    @property
    def key(self) -> tuple[Any, ...] | None:
        """Inputs with equal keys can be concatenated into one predict call."""
        if self.rows is None:
            return None
        if self.kind == TABLE:
            return (TABLE, self.value.columns, self.value.cells)
        if self.kind == ARRAY:
            return (ARRAY, self.value.shape[1:], self.value.dtype.str)
        return (TENSORS, tuple((k, v.shape[1:], v.dtype.str) for k, v in self.value.items()))


@dataclass(frozen=True)
class Request:
    inputs: Inputs
    params: dict[str, Any] | None  # accepted as MLflow does; Cairn models take none


class Reader:
    """Parses request bodies for one model (its input schema decides the form)."""

    def __init__(self, schema: Schema | None) -> None:
        self.schema = schema
        self.tabular = isinstance(schema, ColumnSchema) or (schema is None and _has_pandas())

    # -- bodies ---------------------------------------------------------------------------

    def read(self, body: bytes, content_type: str | None, *, bare: bool = False) -> Request:
        """The request in `body`. `bare`: a JSON list or object without a format key is
        taken as ``inputs`` (POST /predict)."""
        media, charset = _media_type(content_type)
        if charset not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(f"charset {charset} refused: the scoring server "
                                       "reads UTF-8 only")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadRequest(f"the body is not UTF-8 text ({e.reason} at byte "
                             f"{e.start})") from None
        if media == JSON:
            return self._read_json(text, bare)
        if media == CSV:
            return Request(self._from_table(*_read_csv(text)), None)
        given = f"Content-Type {content_type!r}" if content_type else "no Content-Type"
        raise UnsupportedMediaType(f"{given}: send {JSON} (one of {', '.join(FORMATS)}) "
                                   f"or {CSV}")

    def _read_json(self, text: str, bare: bool) -> Request:
        try:
            document = json.loads(text)
        except ValueError as e:
            raise BadRequest(f"the body is not valid JSON: {e}") from None
        except RecursionError:
            raise BadRequest("the body's JSON is nested too deeply to read") from None
        if bare and (not isinstance(document, dict) or not set(document) & set(FORMATS)):
            document = {"inputs": document}
        if not isinstance(document, dict):
            raise BadRequest(f"the body is a JSON {_json_type(document)}; send an object "
                             f"with exactly one of {', '.join(FORMATS)}")
        found = [k for k in FORMATS if k in document]
        if len(found) != 1:
            keys = ", ".join(map(repr, document)) or "none"
            raise BadRequest(f"the body must hold exactly one of {', '.join(FORMATS)} "
                             f"(keys found: {keys})")
        params = document.get(PARAMS)
        if params is not None and not isinstance(params, dict):
            raise BadRequest(f"'params' is a JSON {_json_type(params)}; it must be an object")
        form = found[0]
        value = document[form]
        if form == "dataframe_split":
            inputs = self._from_table(*_split(value))
        elif form == "dataframe_records":
            inputs = self._from_table(*_records(value, form))
        else:
            inputs = self._from_tensors(value, form)
        return Request(inputs, params)

    # -- into model inputs ----------------------------------------------------------------

    def _from_table(self, columns: tuple[str, ...] | None, rows: list[list[Any]]) -> Inputs:
        if self.tabular:
            if columns is None and isinstance(self.schema, ColumnSchema):
                columns = self._positional(rows)
            cells = None if isinstance(self.schema, ColumnSchema) else tuple(
                frozenset(map(type, column)) for column in zip(*rows, strict=False))
            return Inputs(TABLE, Table(columns, rows, cells), len(rows))
        if self._named_tensors():
            if columns is None:
                raise SchemaError(f"the model takes named inputs {self._tensor_names()}; "
                                  "name the columns")
            return _tensors({c: [row[i] for row in rows] for i, c in enumerate(columns)})
        return _array(rows)

    def _from_tensors(self, value: Any, form: str) -> Inputs:
        """``instances`` or ``inputs``: a list (of rows, or of records) or an object."""
        if _is_records(value):
            if self.tabular or not self._named_tensors():
                return self._from_table(*_records(value, form))
            columns, rows = _records(value, form)
            return _tensors({c: [row[i] for row in rows] for i, c in enumerate(columns)})
        if isinstance(value, dict):
            if not value:
                raise BadRequest(f"'{form}' is an empty object")
            if self.tabular or self._one_unnamed_tensor():
                return self._from_table(*_columns(value, form))
            return _tensors(value)
        if isinstance(value, list) and self.tabular:
            if not value:
                raise BadRequest(f"'{form}' is an empty list")
            rows = [row if isinstance(row, list) else [row] for row in value]
            return self._from_table(None, _rectangular(rows, None, form))
        return _array(value)

    def _positional(self, rows: list[list[Any]]) -> tuple[str, ...]:
        """The schema's column names for rows given without them (in saved order)."""
        assert isinstance(self.schema, ColumnSchema)
        names = tuple(c.name for c in self.schema.columns)
        if rows and len(rows[0]) != len(names):
            raise SchemaError(f"rows of {len(rows[0])} values do not fit the model's "
                              f"{len(names)} columns {list(names)}; name the columns")
        return names

    def _named_tensors(self) -> bool:
        """Several inputs, each a column of a table (a dict of arrays)."""
        return isinstance(self.schema, TensorSchema) and len(self.schema.tensors) > 1

    def _one_unnamed_tensor(self) -> bool:
        """A table's columns are then the columns of its one array."""
        return isinstance(self.schema, TensorSchema) and len(self.schema.tensors) == 1 \
            and self.schema.tensors[0].name is None

    def _tensor_names(self) -> list[str | None]:
        assert isinstance(self.schema, TensorSchema)
        return [t.name for t in self.schema.tensors]


def model_input(inputs: Inputs) -> Any:
    """What `LoadedModel.predict` is called with for `inputs`."""
    if inputs.kind != TABLE:
        return inputs.value
    table: Table = inputs.value
    if table.columns is None:
        import numpy as np

        return np.asarray(table.rows)
    import pandas as pd

    return pd.DataFrame(table.rows, columns=list(table.columns))


def combine(batch: Sequence[Inputs]) -> Inputs:
    """One `Inputs` of every row of `batch` (all of one `key`), in order."""
    first = batch[0]
    rows = sum(i.rows or 0 for i in batch)
    if first.kind == TABLE:
        merged = [row for i in batch for row in i.value.rows]
        return Inputs(TABLE, Table(first.value.columns, merged, first.value.cells), rows)
    import numpy as np

    if first.kind == ARRAY:
        return Inputs(ARRAY, np.concatenate([i.value for i in batch]), rows)
    return Inputs(TENSORS, {k: np.concatenate([i.value[k] for i in batch])
                            for k in first.value}, rows)


def split(predictions: Any, sizes: Sequence[int]) -> list[Any] | None:
    """`predictions` cut into consecutive pieces of `sizes` rows; None when they are not
    one row per input row (the batch is then predicted request by request)."""
    total = sum(sizes)
    if isinstance(predictions, Mapping):
        parts = {k: split(v, sizes) for k, v in predictions.items()}
        if any(p is None for p in parts.values()):
            return None
        return [{k: p[n] for k, p in parts.items() if p is not None}
                for n in range(len(sizes))]
    if not hasattr(predictions, "__len__") or isinstance(predictions, str | bytes) \
            or len(predictions) != total:
        return None
    cut = getattr(predictions, "iloc", predictions)  # pandas slices by position
    out, start = [], 0
    for size in sizes:
        out.append(cut[start:start + size])
        start += size
    return out


def answer(predictions: Any, **extra: Any) -> bytes:
    """The JSON answer ``{"predictions": …}`` (numpy and pandas values as MLflow encodes
    them; NaN as MLflow writes it)."""
    return json.dumps({"predictions": jsonable(predictions), **extra},
                      default=_scalar).encode()


def jsonable(value: Any) -> Any:
    if hasattr(value, "tolist") and not hasattr(value, "to_dict"):
        return value.tolist()  # numpy arrays and scalars
    if hasattr(value, "to_frame") and hasattr(value, "to_dict"):  # a Series, as MLflow
        value = value.to_frame()
    if hasattr(value, "to_dict") and hasattr(value, "columns"):
        return value.to_dict(orient="records")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _scalar(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


# -- the formats ---------------------------------------------------------------------------

def _media_type(content_type: str | None) -> tuple[str, str]:
    """(media type, charset) of a Content-Type header; other parameters refused."""
    if not content_type:
        return "", "utf-8"
    media, *parameters = (p.strip() for p in content_type.split(";"))
    charset = "utf-8"
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() != "charset":
            raise UnsupportedMediaType(f"Content-Type parameter {name.strip()!r} is not "
                                       f"understood; send {JSON} or {CSV}")
        charset = value.strip().strip('"').lower()
    return media.lower(), charset


def _split(value: Any) -> tuple[tuple[str, ...] | None, list[list[Any]]]:
    """``{"columns": […], "data": [[…], …], "index": […]}`` (pandas' split orient)."""
    if not isinstance(value, dict):
        raise BadRequest(f"'dataframe_split' is a JSON {_json_type(value)}; it must be an "
                         "object with 'data' (and optionally 'columns', 'index')")
    extra = sorted(set(value) - {"columns", "data", "index"})
    if "data" not in value or extra:
        raise BadRequest("'dataframe_split' must have 'data' and optionally 'columns' and "
                         f"'index' (keys found: {', '.join(map(repr, value)) or 'none'})")
    columns = value.get("columns")
    if columns is not None and (not isinstance(columns, list)
                                or not all(isinstance(c, str | int) for c in columns)):
        raise BadRequest("'dataframe_split.columns' must be a list of column names")
    names = None if columns is None else tuple(str(c) for c in columns)
    if names is not None and len(set(names)) != len(names):
        raise BadRequest(f"'dataframe_split.columns' names a column twice: {list(names)}")
    data = value["data"]
    if not isinstance(data, list) or not data:
        raise BadRequest("'dataframe_split.data' must be a non-empty list of rows")
    rows = [row if isinstance(row, list) else [row] for row in data]
    return names, _rectangular(rows, names, "dataframe_split.data")


def _records(value: Any, form: str) -> tuple[tuple[str, ...], list[list[Any]]]:
    """``[{"col": value, …}, …]``: a missing value is null (as pandas reads it)."""
    if not _is_records(value):
        raise BadRequest(f"'{form}' must be a non-empty list of records (JSON objects); "
                         f"got a JSON {_json_type(value)}")
    columns = tuple(dict.fromkeys(k for record in value for k in record))
    return columns, [[record.get(c) for c in columns] for record in value]


def _columns(value: dict[str, Any], form: str) -> tuple[tuple[str, ...], list[list[Any]]]:
    """``{"col": [values…], …}`` (column-major); scalars make one row."""
    columns = tuple(value)
    if not any(isinstance(v, list) for v in value.values()):
        return columns, [list(value.values())]
    lengths = {c: len(v) if isinstance(v, list) else None for c, v in value.items()}
    if len(set(lengths.values())) != 1:
        raise BadRequest(f"the columns of '{form}' differ in length: "
                         + ", ".join(f"{c!r} {n if n is not None else 'a scalar'}"
                                     for c, n in lengths.items()))
    return columns, [list(row) for row in zip(*value.values(), strict=True)]


def _read_csv(text: str) -> tuple[tuple[str, ...], list[list[Any]]]:
    """A header row, then rows; numbers become numbers and empty cells null."""
    try:
        lines = list(csv.reader(io.StringIO(text)))
    except csv.Error as e:
        raise BadRequest(f"the CSV body cannot be read: {e}") from None
    lines = [line for line in lines if line]
    if len(lines) < 2:
        raise BadRequest("the CSV body must have a header row and at least one row")
    header = tuple(name.strip() for name in lines[0])
    if len(set(header)) != len(header):
        raise BadRequest(f"the CSV header names a column twice: {list(header)}")
    rows = [[_csv_value(cell) for cell in line] for line in lines[1:]]
    return header, _rectangular(rows, header, "the CSV body")


def _csv_value(cell: str) -> Any:
    if cell == "":
        return None
    for kind in (int, float):
        try:
            return kind(cell)
        except ValueError:
            pass
    return cell


def _rectangular(rows: list[list[Any]], names: tuple[str, ...] | None,
                 where: str) -> list[list[Any]]:
    width = len(names) if names is not None else len(rows[0])
    for n, row in enumerate(rows, 1):
        if len(row) != width:
            what = f"{len(names)} columns" if names is not None else f"{width} values (row 1)"
            raise BadRequest(f"row {n} of {where} has {len(row)} values, expected {what}")
    return rows


def _array(value: Any) -> Inputs:
    import numpy as np

    try:
        array = np.asarray(value)
    except ValueError as e:  # ragged nesting
        raise BadRequest(f"the input is not a rectangular array: {e}") from None
    return Inputs(ARRAY, array, array.shape[0] if array.ndim > 0 else None)


def _tensors(value: dict[str, Any]) -> Inputs:
    import numpy as np

    arrays = {}
    for name, item in value.items():
        try:
            arrays[str(name)] = np.asarray(item)
        except ValueError as e:
            raise BadRequest(f"input {name!r} is not a rectangular array: {e}") from None
    lengths = {a.shape[0] if a.ndim > 0 else None for a in arrays.values()}
    rows = lengths.pop() if len(lengths) == 1 else None  # ragged or scalar: alone
    return Inputs(TENSORS, arrays, rows)


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(isinstance(r, dict)
                                                               for r in value)


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean",
             int: "number", float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _has_pandas() -> bool:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True
