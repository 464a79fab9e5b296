"""ONNX models: saved with ``onnx.save``, run with onnxruntime on the CPU.

``predict`` feeds each graph input as a numpy array of the input's element type (pandas
becomes numpy; float32 unless the graph says otherwise). It returns the output array
when the graph has one output, else a dict ``{output name: array}``. Without an input
example the signature is read from the graph's declared inputs and outputs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn.errors import FormatError, UserError
from cairn.flavors.base import (
    ModelMetadata,
    Predict,
    inside,
    new_model_dir,
    read_metadata,
    write_model_file,
)
from cairn.flavors.signature import SchemaError, Signature, TensorSchema, TensorSpec

FLAVOR = "onnx"
MODEL_FILE_NAME = "model.onnx"
_FEED_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64",
               "tensor(float16)": "float16", "tensor(int64)": "int64", "tensor(int32)": "int32",
               "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(bool)": "bool",
               "tensor(string)": "str"}


def save_model(onnx_model: Any, path: str | os.PathLike[str], *, input_example: Any = None,
               signature: Signature | Mapping[str, Any] | None = None,
               metadata: Mapping[str, Any] | None = None,
               pip_requirements: list[str] | None = None) -> ModelMetadata:
    """Save an ``onnx.ModelProto`` as a new model directory at `path`."""
    import onnx

    if not isinstance(onnx_model, onnx.ModelProto):
        raise UserError(f"expected an onnx.ModelProto, got {type(onnx_model).__name__}")
    try:
        onnx.checker.check_model(onnx_model)
    except onnx.checker.ValidationError as e:
        raise UserError(f"the ONNX model is invalid: {str(e).splitlines()[0]}") from None
    if signature is None and input_example is None:
        signature = graph_signature(onnx_model)
    with new_model_dir(path) as tmp:
        onnx.save(onnx_model, str(tmp / MODEL_FILE_NAME))
        session = _session(onnx_model.SerializeToString())
        return write_model_file(tmp, loader=FLAVOR, flavor={"file": MODEL_FILE_NAME},
                                libraries=["onnx", "onnxruntime"],
                                predict=session_predict(session), input_example=input_example,
                                signature=signature, metadata=metadata,
                                pip_requirements=pip_requirements)


def load_model(path: str | os.PathLike[str], *, source: str | None = None) -> Any:
    """The ``onnx.ModelProto`` saved at `path` (ONNX files hold no code: no trust needed)."""
    import onnx

    root = Path(path)
    meta = read_metadata(root)
    if meta.loader != FLAVOR:
        raise UserError(f"{source or path} is a {meta.loader} model, not onnx; "
                        f"load it with cairn.pyfunc.load_model")
    return onnx.load(str(inside(root, meta.flavor.get("file"), "model file")))


def load_flavor(root: Path, meta: ModelMetadata, *, trusted: bool,
                source: str) -> tuple[Any, Predict]:
    file = inside(root, meta.flavor.get("file"), "model file")
    try:
        session = _session(str(file))
    except FileNotFoundError:
        raise FormatError("the model's ONNX file is missing", str(file)) from None
    return session, session_predict(session)


def _session(model: str | bytes) -> Any:
    import onnxruntime as ort

    try:
        return ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped errors for bad files
        if isinstance(model, str) and not Path(model).exists():
            raise FileNotFoundError(model) from None
        raise FormatError(f"onnxruntime cannot load the model ({str(e).splitlines()[0]})",
                          model if isinstance(model, str) else None) from None


def session_predict(session: Any) -> Predict:
    inputs = session.get_inputs()
    names = [o.name for o in session.get_outputs()]

    def predict(data: Any) -> Any:
        if isinstance(data, Mapping):
            missing = [i.name for i in inputs if i.name not in data]
            if missing:
                raise SchemaError(f"input is missing tensor {', '.join(map(repr, missing))}")
            feed = {i.name: _as_feed(data[i.name], i.type) for i in inputs}
        elif len(inputs) == 1:
            feed = {inputs[0].name: _as_feed(data, inputs[0].type)}
        else:
            raise SchemaError(f"the model takes {len(inputs)} inputs "
                              f"{[i.name for i in inputs]}; pass a dict of arrays")
        results = session.run(None, feed)
        return results[0] if len(results) == 1 else dict(zip(names, results, strict=True))

    return predict


def _as_feed(data: Any, onnx_type: str) -> Any:
    import numpy as np

    if hasattr(data, "to_numpy"):  # pandas
        data = data.to_numpy()
    array = np.asarray(data)
    dtype = _FEED_TYPES.get(onnx_type, "float32")
    return array if dtype == "str" else array.astype(dtype, copy=False)


def graph_signature(onnx_model: Any) -> Signature | None:
    """The signature the graph declares, if every input is a plain tensor."""
    inputs = _graph_schema(onnx_model.graph.input)
    if inputs is None:
        return None
    return Signature(inputs, _graph_schema(onnx_model.graph.output))


def _graph_schema(values: Any) -> TensorSchema | None:
    import numpy as np
    import onnx

    specs = []
    for value in values:
        if value.type.WhichOneof("value") != "tensor_type":
            return None
        tensor = value.type.tensor_type
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        if dtype.kind not in "biuf":
            return None
        shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
        specs.append(TensorSpec(dtype.name, shape, value.name))
    return TensorSchema(tuple(specs)) if specs else None
