"""The package format is pinned: fixed inputs give exactly tests/golden/package-v1.cairnpkg,
and this Cairn verifies and reads that file. A change to either is a format change
(docs/formats.md, "Model packages (format 1)"): bump the format version instead."""

from __future__ import annotations

import os
from pathlib import Path

from cairn.packaging.build import Source, serving_yaml, write_package
from cairn.packaging.verify import verify_package

GOLDEN = Path(__file__).parents[2] / "golden" / "package-v1.cairnpkg"
DIGEST = "sha256:39752a7ada0833ba0b68740c1201919ab164bf8cc08ef57931222b6b1fbf72f3"
FILES: dict[str, Source] = {
    "model/cairn-model.yaml": b"format: cairn-model/1\nloader: onnx\nflavors:\n  onnx:\n"
                              b"    model: model.onnx\n",
    "model/model.onnx": bytes(range(256)) * 3,
    "include/prep/features.py": b"def prepare(x):\n    return x\n",
    "serving.yaml": serving_yaml("onnx", 16),
    "schema.json": b'{"inputs":{"tensors":[{"dtype":"float32","shape":[-1,4]}]}}\n',
    "requirements.txt": b"onnxruntime==1.17.0\n",
}
MODEL = {"name": "golden", "version": 1, "uri": "models:/golden/1", "source": "src",
         "run_id": "0" * 32, "digest": "b" * 64, "flavor": "onnx", "created": 1700000000000}
LINEAGE = {"uri": "models:/golden/1", "params": {"lr": "0.1"}, "metrics": {"f1": 0.5},
           "transitions": []}


def test_fixed_inputs_give_the_golden_bytes(tmp_path: Path) -> None:
    out = tmp_path / "golden.cairnpkg"
    digest = write_package(out, FILES, MODEL, LINEAGE, cairn_version="0.1.0")
    if os.environ.get("UPDATE_GOLDEN_PACKAGE"):  # only on purpose, with a format bump
        GOLDEN.write_bytes(out.read_bytes())
    assert out.read_bytes() == GOLDEN.read_bytes()
    assert digest == DIGEST


def test_the_golden_package_verifies_and_reads() -> None:
    manifest = verify_package(GOLDEN)
    assert manifest.digest == DIGEST
    assert (manifest.package_version, manifest.cairn_version) == (1, "0.1.0")
    assert manifest.serving["batch_size"] == 16 and manifest.serving["flavor"] == "onnx"
    assert manifest.requirements == ["onnxruntime==1.17.0"]
    assert [f.path for f in manifest.files] == sorted(FILES)
