"""Benchmark `cairn package build` (and verify, load): time and size, one run each.

    python benchmarks/bench_package.py [--out FILE] [--weights-mb 500]

Two models, each logged and registered in a fresh SQLite tracking store in a scratch
directory (untimed), then packaged twice with `cairn.packaging.build.build_package`:

    demo      the demo's kind of model: a scikit-learn LogisticRegression on iris
              (skops), with an input example and signature
    weights   a pyfunc model with one --weights-mb MiB artifact of random bytes

Timed: the first build (materializing the model from the object store, hashing, writing
the archive, re-reading it to verify, adding it to the object store, recording it), the
second build (the model already materialized), `verify_package`, and `load_package`
(first: verify + extract; again: verify, the extraction reused). Writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CHUNK = 1 << 24


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def register_demo() -> str:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import cairn
    import cairn.sklearn

    features, target = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=300).fit(features, target)
    with cairn.start_run():
        cairn.log_metric("accuracy", float(model.score(features, target)))
        cairn.sklearn.log_model(model, "model", input_example=features[:5],
                                registered_model_name="demo")
    return "models:/demo/1"


WEIGHTS_CODE = '''
class Weights:
    def load_context(self, context):
        self.path = context.artifacts["weights"]

    def predict(self, model_input):
        return [len(model_input)]
'''


def register_weights(work: Path, megabytes: int) -> str:
    import cairn
    import cairn.pyfunc

    weights = work / "weights.bin"
    left = megabytes * (1 << 20)
    with open(weights, "wb") as f:
        while left:
            f.write(os.urandom(min(CHUNK, left)))
            left -= min(CHUNK, left)
    code = work / "bench_weights.py"
    code.write_text(WEIGHTS_CODE)
    with cairn.start_run():
        cairn.pyfunc.log_model("model", python_model="bench_weights:Weights",
                               code_paths=[code], artifacts={"weights": weights},
                               registered_model_name="weights")
    weights.unlink()  # the store holds its copy
    return "models:/weights/1"


def measure(uri: str, out: Path) -> dict[str, Any]:
    from cairn.packaging.build import build_package
    from cairn.packaging.load import load_package
    from cairn.packaging.verify import verify_package

    first_s, built = timed(lambda: build_package(uri, out / "first"))
    second_s, again = timed(lambda: build_package(uri, out / "second"))
    assert built.path.read_bytes() == again.path.read_bytes(), "two builds differ"
    verify_s, _ = timed(lambda: verify_package(built.path))
    load_first_s, _ = timed(lambda: load_package(built.path, trusted=True))
    load_again_s, _ = timed(lambda: load_package(built.path, trusted=True))
    return {"uri": uri, "digest": built.manifest.digest, "files": len(built.manifest.files),
            "package_bytes": built.manifest.size,
            "model_bytes": sum(f.size for f in built.manifest.files),
            "build_first_s": round(first_s, 3), "build_again_s": round(second_s, 3),
            "verify_s": round(verify_s, 3), "load_first_s": round(load_first_s, 3),
            "load_again_s": round(load_again_s, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/package.json")
    parser.add_argument("--weights-mb", type=int, default=500, help="MiB of weights")
    args = parser.parse_args()
    from cairn.tracking import fluent

    with tempfile.TemporaryDirectory(prefix="cairn-bench-package-") as scratch:
        work = Path(scratch)
        os.environ["CAIRN_PACKAGE_CACHE"] = str(work / "package-cache")
        os.chdir(work)
        fluent.set_tracking_uri(f"sqlite:///{work / 'tracking.db'}")
        results = {"demo": measure(register_demo(), work / "dist-demo"),
                   "weights": measure(register_weights(work, args.weights_mb),
                                      work / "dist-weights")}
    document = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                            "system": platform.platform()},
                "weights_mb": args.weights_mb, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print("| model | package size | files | build (first) | build (again) | verify | "
          "load (first) | load (again) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['package_bytes'] / (1 << 20):.2f} MiB | {r['files']} | "
              f"{r['build_first_s']:.2f} s | {r['build_again_s']:.2f} s | {r['verify_s']:.2f} s"
              f" | {r['load_first_s']:.2f} s | {r['load_again_s']:.2f} s |")


if __name__ == "__main__":
    main()
