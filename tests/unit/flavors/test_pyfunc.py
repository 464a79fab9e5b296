from __future__ import annotations

import importlib
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cairn.errors import UserError
from cairn.flavors import base, pyfunc
from cairn.flavors.pickling import UntrustedModelError
from cairn.flavors.signature import SchemaError

# A model whose weights are an artifact and whose feature code is a package.
MODEL_CODE = '''
from pathlib import Path

from {pkg}.scale import scale


class Scorer:
    def load_context(self, context):
        self.weight = float(Path(context.artifacts["weight"]).read_text())

    def predict(self, context, model_input):
        return scale(model_input["x"], self.weight).to_numpy()
'''


def write_code(root: Path, module: str, weight: str = "2.0") -> tuple[Path, Path, Path]:
    pkg = root / f"{module}_lib"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "scale.py").write_text("def scale(x, w):\n    return x * w\n")
    model = root / f"{module}.py"
    model.write_text(MODEL_CODE.format(pkg=pkg.name))
    weight_file = root / "weight.txt"
    weight_file.write_text(weight)
    return model, pkg, weight_file


def save_scorer(tmp_path: Path, name: str, module: str, weight: str = "2.0") -> Path:
    model, pkg, weight_file = write_code(tmp_path / f"src-{name}", module, weight)
    path = tmp_path / name
    pyfunc.save_model(path, python_model=f"{module}:Scorer", code_paths=[model, pkg],
                      artifacts={"weight": weight_file},
                      input_example=pd.DataFrame({"x": [1.0, 2.0]}))
    return path


def test_class_path_model_loads_from_its_own_code_without_pickle(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_scorer(tmp_path, "m", "flv_scorer_a")
    (tmp_path / "src-m").rename(tmp_path / "gone")  # the model carries its own code

    def no_pickle(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("pickle used")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, no_pickle)
    with pytest.raises(UntrustedModelError, match="ships Python code .* would run on loading"):
        pyfunc.load_model(path)  # its code would run: a path alone does not vouch for it
    loaded = pyfunc.load_model(path, trusted=True)
    assert list(loaded.predict(pd.DataFrame({"x": [3.0, 4.0], "y": [0, 0]}))) == [6.0, 8.0]
    module_file = importlib.import_module(type(loaded.unwrap()).__module__).__file__
    assert module_file is not None and Path(module_file).is_relative_to(path)
    with pytest.raises(SchemaError, match="missing column 'x'"):
        loaded.predict(pd.DataFrame({"z": [1.0]}))


def test_artifacts_and_code_are_copied_into_the_model(tmp_path: Path) -> None:
    path = save_scorer(tmp_path, "m", "flv_scorer_b")
    meta = base.read_metadata(path)
    assert meta.flavor == {"code": "code", "artifacts": {"weight": "artifacts/weight/weight.txt"},
                           "python_model": {"class": "flv_scorer_b:Scorer"}}
    assert (path / "code" / "flv_scorer_b_lib" / "scale.py").is_file()
    assert (path / "artifacts" / "weight" / "weight.txt").read_text() == "2.0"


def test_two_models_with_the_same_module_name_each_get_their_own(tmp_path: Path) -> None:
    first = pyfunc.load_model(save_scorer(tmp_path, "v1", "flv_scorer_c", weight="2.0"),
                              trusted=True)
    second = pyfunc.load_model(save_scorer(tmp_path, "v2", "flv_scorer_c", weight="10.0"),
                               trusted=True)
    data = pd.DataFrame({"x": [1.0]})
    assert list(first.predict(data)) == [2.0]
    assert list(second.predict(data)) == [10.0]


def test_pickled_python_model_needs_trust(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    model_file, pkg, weight_file = write_code(tmp_path / "src", "flv_scorer_d")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    scorer = importlib.import_module("flv_scorer_d").Scorer()
    pyfunc.save_model(tmp_path / "m", python_model=scorer, code_paths=[model_file, pkg],
                      artifacts={"weight": weight_file})
    assert base.read_metadata(tmp_path / "m").flavor["python_model"] == {
        "pickle": "python_model.pkl"}
    with pytest.raises(UntrustedModelError, match="is a pickle model; pickle can run"):
        pyfunc.load_model(tmp_path / "m")
    loaded = pyfunc.load_model(tmp_path / "m", trusted=True)
    assert list(loaded.predict(pd.DataFrame({"x": [1.5]}))) == [3.0]  # load_context ran


class Doubler:
    """A plain predict(model_input), importable by pickle from this test module."""

    def predict(self, model_input: Any) -> Any:
        return np.asarray(model_input) * 2


def test_plain_predict_and_output_schema(tmp_path: Path) -> None:
    pyfunc.save_model(tmp_path / "m", python_model=Doubler(),
                      input_example=np.ones((2, 3), dtype=np.float32))
    loaded = pyfunc.load_model(tmp_path / "m", trusted=True)
    assert loaded.predict(np.ones((1, 3), dtype=np.float32)).tolist() == [[2.0, 2.0, 2.0]]
    assert loaded.signature is not None and loaded.signature.outputs is not None
    assert loaded.signature.outputs.to_dict() == {
        "tensors": [{"dtype": "float32", "shape": [-1, 3]}]}


def test_class_from_outside_the_model_code_needs_trust(tmp_path: Path) -> None:
    path = save_scorer(tmp_path, "m", "flv_scorer_e")
    text = (path / base.MODEL_FILE).read_text().replace("flv_scorer_e:Scorer",
                                                         "collections:OrderedDict")
    (path / base.MODEL_FILE).write_text(text)
    with pytest.raises(UntrustedModelError, match="from outside its own code"):
        pyfunc.load_model(path)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"python_model": "not a path"}, "must look like 'module:ClassName'"),
    ({"python_model": "elsewhere:Model"}, "module 'elsewhere' is not among code_paths"),
    ({"python_model": object()}, "has no predict method"),
    ({"python_model": Doubler(), "artifacts": {"../x": "f"}}, "artifact name '../x'"),
    ({"python_model": Doubler(), "artifacts": {"w": "/no/such/file"}}, "does not exist"),
])
def test_bad_arguments_are_refused_before_anything_is_written(
        tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message):
        pyfunc.save_model(tmp_path / "m", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_artifact_paths_in_the_model_file_cannot_escape(tmp_path: Path) -> None:
    path = save_scorer(tmp_path, "m", "flv_scorer_f")
    text = (path / base.MODEL_FILE).read_text().replace("artifacts/weight/weight.txt",
                                                         "../src-m/weight.txt")
    (path / base.MODEL_FILE).write_text(text)
    with pytest.raises(UserError, match="artifact 'weight'"):
        pyfunc.load_model(path)


def test_a_pickled_model_loads_in_a_fresh_process_from_its_own_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    model_file, pkg, weight_file = write_code(tmp_path / "src", "flv_scorer_g")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    scorer = importlib.import_module("flv_scorer_g").Scorer()
    pyfunc.save_model(tmp_path / "m", python_model=scorer, code_paths=[model_file, pkg],
                      artifacts={"weight": weight_file})
    (tmp_path / "src").rename(tmp_path / "gone")
    script = ("import pandas as pd; from cairn.flavors import pyfunc; "
              f"m = pyfunc.load_model({str(tmp_path / 'm')!r}, trusted=True); "
              "print(m.predict(pd.DataFrame({'x': [1.0, 2.0]})).tolist())")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert out.stdout.strip() == "[2.0, 4.0]"
