"""A small package built straight from a model directory (no registry): a pyfunc model
whose code doubles its input, with a weights artifact."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import cairn.pyfunc
from cairn.packaging.build import model_files, serving_yaml, write_package
from cairn.packaging.manifest import REQUIREMENTS_FILE, SCHEMA_FILE, SERVING_FILE

CODE = '''
class Doubler:
    def load_context(self, context):
        with open(context.artifacts["weights"]) as f:
            self.factor = int(f.read())

    def predict(self, model_input):
        return [x * self.factor for x in model_input]
'''
MODEL = {"name": "doubler", "version": 3, "uri": "models:/doubler/3", "source": "s",
         "run_id": "r1", "digest": "d" * 64, "flavor": "pyfunc", "created": 1700000000000}
LINEAGE = {"model": {"name": "doubler", "version": 3}, "params": {"lr": "0.1"},
           "metrics": {"f1": 0.9}}


@pytest.fixture(autouse=True)
def package_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CAIRN_PACKAGE_CACHE", str(tmp_path / "package-cache"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    sys.modules.pop("pkg_doubler", None)


def model_dir(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "pkg_doubler.py").write_text(CODE)
    weights = tmp_path / "weights.txt"
    weights.write_text("2")
    target = tmp_path / "model"
    cairn.pyfunc.save_model(target, python_model="pkg_doubler:Doubler",
                            code_paths=[src / "pkg_doubler.py"],
                            artifacts={"weights": weights},
                            signature={"inputs": {"tensors": [{"dtype": "int64",
                                                               "shape": [-1]}]}},
                            pip_requirements=["numpy==2.0.0"])
    return target


def build(model: Path, target: Path, extra: dict[str, bytes] | None = None) -> str:
    files = {**model_files(model), SERVING_FILE: serving_yaml("pyfunc", 8),
             SCHEMA_FILE: b'{"inputs":{}}\n', REQUIREMENTS_FILE: b"numpy==2.0.0\n",
             **(extra or {})}
    return write_package(target, dict(files), MODEL, LINEAGE)


@pytest.fixture
def package(tmp_path: Path) -> Path:
    target = tmp_path / "dist" / "doubler-v3.cairnpkg"
    build(model_dir(tmp_path), target)
    return target
