"""One tracking workload, run inside the interpreter of the tool under test.

    <python> tracking_workloads.py TOOL WORKLOAD --db URI --artifacts DIR --n N

TOOL is ``mlflow`` or ``cairn``: the module is imported under the name ``mlflow`` and the
workload code below is the same for both, so Cairn runs exactly what an MLflow user wrote.
The script times its workload itself (so interpreter start-up, imports and opening or
creating the database are not in the workload's time), checks the result without timing
it, and prints one line ``BENCH-RESULT {json}`` with epoch times of when the import and
the set-up finished (the harness subtracts its own spawn time to get start-up).

Imports only the standard library at module level: nothing of either tool is loaded
before the timer that measures it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

EXPERIMENT = "bench"
MODEL = "bench-model"
SEARCH_REPEATS = 5

Phases = dict[str, float]
Workload = Callable[[Any, argparse.Namespace], tuple[Phases, str]]


def value(run: int, key: int) -> float:
    """A deterministic metric value in [0, 1) for run ``run``, metric ``m<key>``."""
    return ((run * 7919 + key * 104729) % 10007) / 10007


def set_up(mlflow: Any, args: argparse.Namespace) -> str:
    """Point the tool at the benchmark's database and experiment; return the experiment id."""
    mlflow.set_tracking_uri(args.db)
    if args.tool == "mlflow":  # keep MLflow's artifacts in the scratch directory, not ./mlruns
        client = mlflow.MlflowClient()
        if client.get_experiment_by_name(EXPERIMENT) is None:
            client.create_experiment(EXPERIMENT, artifact_location=args.artifacts)
    return str(mlflow.set_experiment(EXPERIMENT).experiment_id)


def metric_loop(mlflow: Any, args: argparse.Namespace) -> tuple[Phases, str]:
    started = time.perf_counter()
    with mlflow.start_run() as run:
        for i in range(args.n):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
    phases = {"log": time.perf_counter() - started}
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    return phases, check(len(history) == args.n, f"{len(history)} of {args.n} steps stored")


def metric_batches(mlflow: Any, args: argparse.Namespace) -> tuple[Phases, str]:
    started = time.perf_counter()
    with mlflow.start_run() as run:
        for step in range(args.n):
            mlflow.log_metrics({f"m{k}": value(step, k) for k in range(100)}, step=step)
    phases = {"log": time.perf_counter() - started}
    client = mlflow.MlflowClient()
    counts = {len(client.get_metric_history(run.info.run_id, k)) for k in ("m0", "m99")}
    return phases, check(counts == {args.n}, f"steps stored per key: {sorted(counts)}")


def runs_and_search(mlflow: Any, args: argparse.Namespace) -> tuple[Phases, str]:
    started = time.perf_counter()
    for i in range(args.n):
        with mlflow.start_run():
            mlflow.log_params({f"p{k}": f"{i}-{k}" for k in range(5)})
            mlflow.log_metrics({f"m{k}": value(i, k) for k in range(5)})
    created = time.perf_counter()
    client = mlflow.MlflowClient()
    searches = []
    for _ in range(SEARCH_REPEATS):
        t0 = time.perf_counter()
        found = client.search_runs([args.experiment_id], filter_string="metrics.m0 > 0.5",
                                   order_by=["metrics.m1 DESC"], max_results=100)
        searches.append(time.perf_counter() - t0)
    phases = {"create": created - started, "search_first": searches[0],
              "search": statistics.median(searches)}
    expected = sorted((value(i, 1) for i in range(args.n) if value(i, 0) > 0.5),
                      reverse=True)[:100]
    got = [r.data.metrics["m1"] for r in found]
    return phases, check(got == expected, f"top m1 {got[:3]}…, expected {expected[:3]}…")


def train_iris(strength: float = 1.0) -> Any:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, target = load_iris(return_X_y=True)
    return LogisticRegression(C=strength, max_iter=500).fit(features, target), features


def log_model_run(mlflow: Any, strength: float = 1.0) -> str:
    model, _ = train_iris(strength)
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, "model")
    return str(run.info.run_id)


def register_and_promote(mlflow: Any, args: argparse.Namespace) -> tuple[Phases, str]:
    run_id = log_model_run(mlflow)  # untimed: the model every version points at
    client = mlflow.MlflowClient()
    register = promote = 0.0
    for _ in range(args.n):
        t0 = time.perf_counter()
        version = mlflow.register_model(f"runs:/{run_id}/model", MODEL).version
        t1 = time.perf_counter()
        client.transition_model_version_stage(MODEL, version, "Production",
                                              archive_existing_versions=True)
        promote += time.perf_counter() - t1
        register += t1 - t0
    prod = [int(v.version) for v in client.get_latest_versions(MODEL, stages=["Production"])]
    stages = [v.current_stage for v in client.search_model_versions(f"name='{MODEL}'")]
    ok = prod == [args.n] and stages.count("Archived") == args.n - 1
    return ({"register": register, "promote": promote, "total": register + promote},
            check(ok, f"production {prod}, {stages.count('Archived')} archived"))


def load_setup(mlflow: Any, args: argparse.Namespace) -> tuple[Phases, str]:
    """Two versions of different models (different bytes: no cache shared between them)."""
    versions = [mlflow.register_model(f"runs:/{log_model_run(mlflow, c)}/model", MODEL).version
                for c in (1.0, 0.5)]
    return {}, check([int(v) for v in versions] == [1, 2], f"registered versions {versions}")


def load(mlflow: Any, args: argparse.Namespace) -> tuple[Phases, str]:
    """Version 1 in a fresh process (libraries imported on the way), then version 2 with the
    libraries loaded (a server picking up a new version), then version 2 again."""
    t0 = time.perf_counter()
    first = mlflow.pyfunc.load_model(f"models:/{MODEL}/1")
    t1 = time.perf_counter()
    second = mlflow.pyfunc.load_model(f"models:/{MODEL}/2")
    t2 = time.perf_counter()
    mlflow.pyfunc.load_model(f"models:/{MODEL}/2")
    t3 = time.perf_counter()
    same = True
    for model, strength in ((first, 1.0), (second, 0.5)):
        reference, features = train_iris(strength)
        got = model.predict(features[:50])
        same = same and list(got) == list(reference.predict(features[:50]))
    return ({"load": t1 - t0, "load_warm": t2 - t1, "load_again": t3 - t2},
            check(same, "predictions differ from the trained models'"))


def check(ok: bool, problem: str) -> str:
    return "ok" if ok else problem


WORKLOADS: dict[str, Workload] = {
    "metric-loop": metric_loop,
    "metric-batches": metric_batches,
    "runs-search": runs_and_search,
    "registry-promote": register_and_promote,
    "load-setup": load_setup,
    "load": load,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("tool", choices=["mlflow", "cairn"])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--db", required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--n", type=int, default=0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # deprecation notices of stages etc.: not measured
    logging.disable(logging.WARNING)
    mlflow = importlib.import_module(args.tool)
    imported = time.time()
    args.experiment_id = set_up(mlflow, args)
    ready = time.time()
    phases, outcome = WORKLOADS[args.workload](mlflow, args)
    version = getattr(mlflow, "__version__", "?")
    print("BENCH-RESULT " + json.dumps({"imported": imported, "ready": ready, "phases": phases,
                                        "check": outcome, "version": version,
                                        "pid": os.getpid()}), flush=True)


if __name__ == "__main__":
    main()
