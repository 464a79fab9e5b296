from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cairn.errors import UserError
from cairn.flavors.signature import (
    ColumnSchema,
    ColumnSpec,
    SchemaError,
    Signature,
    TensorSchema,
    TensorSpec,
    enforce,
    infer_schema,
    infer_signature,
)

FRAME = pd.DataFrame({"age": [31, 42], "income": [1.5, 2.5], "city": ["Oslo", "Rome"],
                      "member": [True, False]})


def test_pandas_signature_names_columns_and_dtypes() -> None:
    signature = infer_signature(FRAME, np.array([0, 1]))
    assert signature.inputs == ColumnSchema((
        ColumnSpec("age", "int64"), ColumnSpec("income", "float64"),
        ColumnSpec("city", "string"), ColumnSpec("member", "bool")))
    assert signature.outputs == TensorSchema((TensorSpec("int64", (-1,)),))


def test_numpy_signature_has_a_free_batch_dimension() -> None:
    schema = infer_schema(np.zeros((5, 3, 2), dtype=np.float32))
    assert schema == TensorSchema((TensorSpec("float32", (-1, 3, 2)),))


def test_list_of_dicts_is_read_as_columns() -> None:
    schema = infer_schema([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])
    assert schema == ColumnSchema((ColumnSpec("a", "int64"), ColumnSpec("b", "string")))


def test_signature_round_trips_through_its_dict_form() -> None:
    signature = Signature(infer_schema(FRAME), TensorSchema((
        TensorSpec("int64", (-1,), "label"), TensorSpec("float32", (-1, 3), "proba"))))
    assert Signature.from_dict(signature.to_dict()) == signature


def test_object_arrays_have_no_signature() -> None:
    with pytest.raises(UserError, match="cannot infer a signature"):
        infer_schema(np.array([{"a": 1}, None], dtype=object))


def test_missing_column_is_named() -> None:
    with pytest.raises(SchemaError, match="missing column 'income'"):
        enforce(infer_schema(FRAME), FRAME.drop(columns=["income"]))


def test_extra_columns_are_dropped_and_order_restored() -> None:
    shuffled = FRAME[["city", "member", "income", "age"]].assign(extra=1)
    out = enforce(infer_schema(FRAME), shuffled)
    assert list(out.columns) == ["age", "income", "city", "member"]


def test_wrong_dtype_names_the_column_and_both_dtypes() -> None:
    bad = FRAME.assign(age=["old", "young"])
    with pytest.raises(SchemaError, match="column 'age' has dtype string, the model expects int64"):
        enforce(infer_schema(FRAME), bad)


def test_floats_are_not_truncated_into_integer_columns() -> None:
    with pytest.raises(SchemaError, match="column 'age' has dtype float64"):
        enforce(infer_schema(FRAME), FRAME.assign(age=[31.5, 42.0]))


def test_integers_widen_to_float_columns() -> None:
    out = enforce(infer_schema(FRAME), FRAME.assign(income=[1, 2]))
    assert out["income"].dtype == np.float64
    assert out["income"].tolist() == [1.0, 2.0]


def test_integers_that_float_cannot_hold_exactly_are_refused() -> None:
    schema = ColumnSchema((ColumnSpec("x", "float64"),))
    with pytest.raises(SchemaError, match="values that do not fit float64"):
        enforce(schema, pd.DataFrame({"x": [2**53 + 1]}))


def test_numpy_rows_fill_named_columns_in_order() -> None:
    schema = ColumnSchema((ColumnSpec("a", "float64"), ColumnSpec("b", "float64")))
    out = enforce(schema, np.array([[1.0, 2.0]]))
    assert out.to_dict("records") == [{"a": 1.0, "b": 2.0}]
    with pytest.raises(SchemaError, match=r"shape \(1, 3\) does not fit the model's 2 columns"):
        enforce(schema, np.array([[1.0, 2.0, 3.0]]))


def test_tensor_shape_mismatch_is_refused() -> None:
    schema = TensorSchema((TensorSpec("float64", (-1, 4)),))
    assert enforce(schema, np.ones((7, 4))).shape == (7, 4)
    with pytest.raises(SchemaError, match=r"shape \(2, 3\), the model expects \('any', 4\)"):
        enforce(schema, np.ones((2, 3)))
    with pytest.raises(SchemaError, match=r"shape \(4,\)"):
        enforce(schema, np.ones(4))


def test_tensor_dtype_mismatch_is_refused() -> None:
    schema = TensorSchema((TensorSpec("float32", (-1, 2)),))
    assert enforce(schema, np.ones((1, 2))).dtype == np.float32  # float64 narrows
    with pytest.raises(SchemaError, match="input has dtype string, the model expects float32"):
        enforce(schema, np.array([["a", "b"]]))


def test_named_tensors_need_every_name() -> None:
    schema = TensorSchema((TensorSpec("float32", (-1,), "x"), TensorSpec("int64", (-1,), "y")))
    with pytest.raises(SchemaError, match="missing tensor 'y'"):
        enforce(schema, {"x": np.ones(2)})


def test_unnamed_columns_keep_their_labels() -> None:
    frame = pd.DataFrame(np.ones((2, 2)))  # columns 0 and 1, as from a bare array
    schema = infer_schema(frame)
    assert [c.name for c in schema.columns] == ["0", "1"]  # type: ignore[union-attr]
    assert list(enforce(schema, frame).columns) == [0, 1]
