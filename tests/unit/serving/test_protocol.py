"""Request bodies into model inputs, and a batch's predictions split back: the forms
`cairn serve` calls a model with, with pandas and without it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from cairn.flavors.signature import ColumnSchema, ColumnSpec, SchemaError, TensorSchema, TensorSpec
from cairn.serving.protocol import BadRequest, Reader, combine, model_input, split

COLUMNS = ColumnSchema((ColumnSpec("a", "float64"), ColumnSpec("b", "float64")))
TENSOR = TensorSchema((TensorSpec("float64", (-1, 2)),))
NAMED = TensorSchema((TensorSpec("float64", (-1,), "a"), TensorSpec("float64", (-1,), "b")))
JSON = "application/json"


def read(schema: ColumnSchema | TensorSchema | None, body: str) -> object:
    return model_input(Reader(schema).read(body.encode(), JSON).inputs)


def test_a_column_model_gets_a_dataframe_with_its_columns_from_every_format() -> None:
    bodies = ['{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}',
              '{"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}',
              '{"instances": [[1, 2], [3, 4]]}',
              '{"inputs": {"a": [1, 3], "b": [2, 4]}}']
    for body in bodies:
        frame = read(COLUMNS, body)
        assert isinstance(frame, pd.DataFrame), body
        assert list(frame.columns) == ["a", "b"] and frame.to_numpy().tolist() == [[1, 2],
                                                                                    [3, 4]]


def test_tensor_models_get_arrays_and_named_tensors_a_dict() -> None:
    array = read(TENSOR, '{"dataframe_records": [{"a": 1, "b": 2}]}')
    assert isinstance(array, np.ndarray) and array.tolist() == [[1, 2]]
    named = read(NAMED, '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}')
    assert isinstance(named, dict) and {k: v.tolist() for k, v in named.items()} == {
        "a": [1], "b": [2]}
    with pytest.raises(SchemaError, match="name the columns"):
        read(NAMED, '{"dataframe_split": {"data": [[1, 2]]}}')


def test_rows_that_do_not_fit_the_columns_are_refused() -> None:
    with pytest.raises(SchemaError, match="do not fit the model's 2 columns"):
        read(COLUMNS, '{"inputs": [[1, 2, 3]]}')
    with pytest.raises(BadRequest, match="row 2"):
        read(COLUMNS, '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3]]}}')


def test_a_batch_is_combined_in_order_and_split_back() -> None:
    reader = Reader(COLUMNS)
    parts = [reader.read(f'{{"inputs": [[{n}, {n}], [{n}, {n}]]}}'.encode(), JSON).inputs
             for n in range(3)]
    assert len({p.key for p in parts}) == 1
    together = model_input(combine(parts))
    assert together["a"].tolist() == [0, 0, 1, 1, 2, 2]
    pieces = split(together["a"].to_numpy() * 10, [2, 2, 2])
    assert pieces is not None and [p.tolist() for p in pieces] == [[0, 0], [10, 10],
                                                                   [20, 20]]
    assert split(np.zeros(5), [2, 2, 2]) is None  # not one prediction a row: alone


def test_schemaless_tables_batch_together_only_when_their_cell_types_agree() -> None:
    """Without a schema pandas infers a column's type from the merged rows: a request's
    strings batched with another's numbers would turn those numbers into objects."""
    free = Reader(None)
    ints, again, text = (free.read(body.encode(), JSON).inputs for body in (
        '{"inputs": {"x": [1, 2]}}', '{"inputs": {"x": [3]}}', '{"inputs": {"x": ["a"]}}'))
    assert ints.key == again.key != text.key
    typed = Reader(ColumnSchema((ColumnSpec("x", "float64"),)))
    whole, half = (typed.read(body.encode(), JSON).inputs for body in (
        '{"inputs": {"x": [1]}}', '{"inputs": {"x": [1.5]}}'))
    assert whole.key == half.key  # the schema converts both to float64


def test_a_batch_whose_output_cannot_be_split_is_predicted_request_by_request() -> None:
    """A model that answers a batch with a 0-d array (len() fails): each request is
    predicted alone, and each gets its own answer (not the batch's error)."""
    import asyncio

    from cairn.serving.batching import Batcher

    def predict(x: pd.DataFrame) -> object:
        return np.asarray(x["a"].sum()) if len(x) > 1 else x["a"].to_numpy() * 2

    async def three_at_once() -> list[object]:
        batcher = Batcher(predict, batch_size=8)
        batcher.start()
        reader = Reader(COLUMNS)
        try:
            return list(await asyncio.gather(*(batcher.predict(reader.read(
                f'{{"inputs": [[{n}, 0]]}}'.encode(), JSON).inputs) for n in range(3))))
        finally:
            await batcher.stop()

    assert [np.asarray(a).tolist() for a in asyncio.run(three_at_once())] == [[0], [2], [4]]


def test_without_pandas_a_tensor_model_is_served_with_numpy_only() -> None:
    code = textwrap.dedent("""
        import sys
        sys.modules["pandas"] = None  # as if not installed
        from cairn.flavors.signature import TensorSchema, TensorSpec
        from cairn.serving.protocol import Reader, model_input
        schema = TensorSchema((TensorSpec("float64", (-1, 2)),))
        for reader in (Reader(schema), Reader(None)):
            for body in (b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}',
                         b'{"inputs": [[1, 2]]}'):
                value = model_input(reader.read(body, "application/json").inputs)
                assert type(value).__name__ == "ndarray", (body, type(value))
            value = model_input(reader.read(b"a,b\\n1,2\\n", "text/csv").inputs)
            assert value.tolist() == [[1, 2]]
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr
