"""One promotion-gate workload, run inside the interpreter of the tool under test.

    <python> gate_workloads.py TOOL WORKLOAD --db URI --artifacts DIR --n N [--profile FILE]

WORKLOAD is ``promote`` (no gate policy: MLflow or Cairn), ``promote-gated`` (Cairn with
a three-rule metric policy on Staging and Production) or ``smoke`` (Cairn: a
``smoke_test`` gate on an iris model, checked; and, for context, a plain ``load_model``
+ ``predict`` in a fresh process). As in tracking_workloads.py, the tool is imported
under the name ``mlflow`` and the timed code is the same for both tools: the loop of
``MlflowClient().transition_model_version_stage``. Setting up (runs, metrics, model
versions, the policy) is not timed; each process prints ``BENCH-RESULT {json}``.

Imports only the standard library (and tracking_workloads, which does too) at module
level.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from tracking_workloads import MODEL, Phases, check, set_up

RULES = """\
  - metric: f1
    min_improvement: 0.0
  - metric: accuracy
    min: 0.5
  - metric: loss
    max: 10
    better: lower
"""
POLICY = f"Production:\n{RULES}Staging:\n{RULES}"
SMOKE_MODEL = "iris-smoke"
SMOKE_POLICY = "Production:\n  - require: smoke_test\n"
SMOKE_REPEATS = 3  # check_gates calls per process (each spawns the smoke-test process)


def stage_of(i: int) -> str:
    """Version i goes to Staging when odd, Production when even: 50 promotions each."""
    return "Staging" if i % 2 else "Production"


def metrics_of(i: int) -> dict[str, float]:
    """f1 rises with every version, so each one beats the holder of its target stage."""
    return {"f1": 0.5 + 0.004 * i, "accuracy": 0.6 + 0.003 * i, "loss": 1.0 / i}


def register_versions(mlflow: Any, args: argparse.Namespace) -> list[str]:
    """Untimed: n runs, each logging the three metrics and a small model directory,
    each registered as the next version of MODEL."""
    model_dir = Path(args.artifacts).parent / "model-src"
    model_dir.mkdir(parents=True, exist_ok=True)
    client = mlflow.MlflowClient()
    client.create_registered_model(MODEL)
    versions = []
    for i in range(1, args.n + 1):
        (model_dir / "weights.txt").write_text(f"weights of version {i}\n")
        with mlflow.start_run() as run:
            mlflow.log_metrics(metrics_of(i))
            mlflow.log_artifacts(str(model_dir), "model")
        # MLflow 3's register_model wants a logged model, not a run's directory: both
        # tools create the version from the run's artifact directory instead
        source = (f"{run.info.artifact_uri}/model" if args.tool == "mlflow"
                  else f"runs:/{run.info.run_id}/model")
        versions.append(str(client.create_model_version(MODEL, source,
                                                        run_id=run.info.run_id).version))
    return versions


def promote(mlflow: Any, args: argparse.Namespace) -> tuple[Phases, str]:
    t0 = time.perf_counter()
    versions = register_versions(mlflow, args)
    client = mlflow.MlflowClient()
    if args.workload == "promote-gated":
        client.set_gate_policy(MODEL, POLICY)
    prepared = time.perf_counter()
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    each = []
    for i, version in enumerate(versions, 1):
        t1 = time.perf_counter()
        client.transition_model_version_stage(MODEL, version, stage_of(i),
                                              archive_existing_versions=False)
        each.append(time.perf_counter() - t1)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    total = sum(each)
    tenth = max(len(each) // 10, 1)
    phases = {"prepare": prepared - t0, "promote": total,
              "per_promotion": total / len(each),
              "first_tenth": sum(each[:tenth]) / tenth, "last_tenth": sum(each[-tenth:]) / tenth}
    stages = {v.version: v.current_stage
              for v in client.search_model_versions(f"name='{MODEL}'")}
    wanted = {int(v): stage_of(i) for i, v in enumerate(versions, 1)}
    ok = {int(k): s for k, s in stages.items()} == wanted
    problem = f"stages {sorted(stages.items())[:4]}…, expected {sorted(wanted.items())[:4]}…"
    if ok and args.workload == "promote-gated":  # the gates were live: v1 would not pass
        ok = not client.check_gates(MODEL, versions[0], "Production").passed
        problem = "version 1 passes the Production gates: the policy was not evaluated"
    return phases, check(ok, problem)


def smoke(mlflow: Any, args: argparse.Namespace) -> tuple[Phases, str]:
    """Untimed: the examples/iris model (SGDClassifier, five-row input example)
    registered, with a smoke_test gate on Production. Timed: check_gates, and the plain
    load + predict in a fresh process, each SMOKE_REPEATS times, alternating."""
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import SGDClassifier

    iris = load_iris(as_frame=True)
    features: pd.DataFrame = iris.data
    model = SGDClassifier(loss="log_loss", learning_rate="constant", eta0=0.01, max_iter=20,
                          random_state=0).fit(features, iris.target)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, "model", input_example=features.head(5),
                                        registered_model_name=SMOKE_MODEL)
    version = str(getattr(info, "registered_model_version", None) or 1)
    client = mlflow.MlflowClient()
    client.set_gate_policy(SMOKE_MODEL, SMOKE_POLICY)
    uri = f"models:/{SMOKE_MODEL}/{version}"
    plain = (f"import cairn; m = cairn.load_model({uri!r}); "
             "print(len(m.predict(m.input_example)))")
    env = {**os.environ, "CAIRN_TRACKING_URI": args.db}
    checks, loads, answers = [], [], []
    for _ in range(SMOKE_REPEATS):
        t0 = time.perf_counter()
        result = client.check_gates(SMOKE_MODEL, version, "Production")
        checks.append(time.perf_counter() - t0)
        answers.append(result.passed)
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", plain], env=env, capture_output=True,
                              text=True, check=False)
        loads.append(time.perf_counter() - t0)
        answers.append(done.returncode == 0 and done.stdout.strip() == "5")
    phases = {"check_gates": statistics.median(checks), "check_gates_first": checks[0],
              "plain_load_predict": statistics.median(loads)}
    reasons = "; ".join(result.reasons) or "no verdicts"
    return phases, check(all(answers), f"check/load outcomes {answers}: {reasons}")


WORKLOADS = {"promote": promote, "promote-gated": promote, "smoke": smoke}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("tool", choices=["mlflow", "cairn"])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--db", required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--profile", help="cProfile the promotion loop into this file")
    args = parser.parse_args()
    if args.tool == "mlflow" and args.workload != "promote":
        parser.error("MLflow has no gates: only the promote workload runs with it")
    warnings.simplefilter("ignore")  # stage deprecation notices etc.: not measured
    logging.disable(logging.WARNING)
    mlflow = importlib.import_module(args.tool)
    imported = time.time()
    args.experiment_id = set_up(mlflow, args)
    ready = time.time()
    phases, outcome = WORKLOADS[args.workload](mlflow, args)
    print("BENCH-RESULT " + json.dumps({"imported": imported, "ready": ready, "phases": phases,
                                        "check": outcome,
                                        "version": getattr(mlflow, "__version__", "?"),
                                        "pid": os.getpid()}), flush=True)


if __name__ == "__main__":
    main()
