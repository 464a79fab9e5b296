"""Benchmark retention over many runs: `cairn retention apply` against the seed article's
MLflow cleanup script followed by `mlflow gc`, on the same history, in one run.

    python benchmarks/bench_retention.py [--runs 10000] [--artifacts 10] [--quick]
                                         [--tools mlflow,cairn] [--out FILE] [--keep]

The history: RUNS runs in one experiment, each with ARTIFACTS small artifact files
(10,000 x 10 = 100,000 objects), started over the last 200 days; 1% of them are the
source of a registered version and 1% are tagged `keep`. The policy: delete runs older
than 90 days unless registered or tagged `keep`; about 55% of the runs expire.

- Cairn: `cairn retention apply --dry-run --json` (it lists the runs and every object
  that would go, with bytes), then `cairn retention apply` (deletes them), each a fresh
  process timed from outside.
- MLflow 3.x (its own virtualenv, SQLite + a local artifact root): the seed's cleanup
  script (`search_runs`, and per old run `search_model_versions("run_id='…'")`, then
  `delete_run`) — its "dry run" is the same script without `delete_run`, which lists runs
  only, never objects or bytes — then `mlflow gc`, which deletes the deleted runs'
  artifacts. The seed's script reads one page of 1,000 runs; here it pages through all.

The histories are built beforehand (not timed): through each tool's own API.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peers import BENCH_DIR, PROJECT_ROOT, ensure_mlflow

DAY_MS = 86_400_000
MAX_AGE_DAYS = 90
SPAN_DAYS = 200
CAIRN = PROJECT_ROOT / ".venv" / "bin" / "cairn"
CAIRN_PY = PROJECT_ROOT / ".venv" / "bin" / "python"


def history(runs: int) -> list[tuple[int, bool, bool]]:
    """(start time in ms, registered, tagged keep) per run, the same for both tools."""
    now = int(time.time() * 1000)
    return [(now - (i * SPAN_DAYS * DAY_MS) // runs, i % 100 == 1, i % 100 == 2)
            for i in range(runs)]


CAIRN_SETUP = r"""
import json, os, sys
from pathlib import Path
from cairn.project.context import open_project
from cairn.store.entities import Artifact, RunTag
plan = json.loads(Path(sys.argv[1]).read_text())
artifacts = int(sys.argv[2])
with open_project(Path.cwd()) as project:
    store, odb = project.store, project.odb
    experiment = store.create_experiment("bench")
    store.create_registered_model("fraud")
    for i, (start, registered, keep) in enumerate(plan):
        tags = [RunTag("keep", "1")] if keep else []
        run = store.create_run(experiment, "bench", start, tags, f"run-{i}")
        run_id = run.info.run_id
        found = []
        for a in range(artifacts):
            data = f"run {i} artifact {a} ".encode() + os.urandom(48)
            found.append(Artifact(run_id, f"out/{a}.bin", odb.add_bytes(data), len(data)))
        store.log_artifacts(run_id, found)
        store.finish_run(run_id, "FINISHED", start + 1000)
        if registered:
            store.create_model_version("fraud", f"runs:/{run_id}/out/0.bin", found[0].digest,
                                       run_id=run_id)
"""

MLFLOW_SETUP = r"""
import json, os, sys, tempfile
from pathlib import Path
import mlflow
from mlflow import MlflowClient
plan = json.loads(Path(sys.argv[1]).read_text())
artifacts = int(sys.argv[2])
client = MlflowClient()
experiment = client.create_experiment("bench")
client.create_registered_model("fraud")
with tempfile.TemporaryDirectory() as tmp:
    for i, (start, registered, keep) in enumerate(plan):
        tags = {"keep": "1"} if keep else {}
        run = client.create_run(experiment, start_time=start, tags=tags, run_name=f"run-{i}")
        run_id = run.info.run_id
        out = Path(tmp) / str(i)
        out.mkdir()
        for a in range(artifacts):
            (out / f"{a}.bin").write_bytes(f"run {i} artifact {a} ".encode() + os.urandom(48))
        client.log_artifacts(run_id, str(out), "out")
        client.set_terminated(run_id, "FINISHED", start + 1000)
        if registered:
            client.create_model_version("fraud", f"runs:/{run_id}/out/0.bin", run_id)
"""

# The seed article's script, paging through every run (the article's reads one page).
MLFLOW_CLEANUP = r"""
import sys, time
from datetime import datetime, timedelta
from mlflow import MlflowClient
from mlflow.entities import ViewType
delete = sys.argv[1] == "apply"
client = MlflowClient()
experiment = client.get_experiment_by_name("bench").experiment_id
cutoff = datetime.now() - timedelta(days=90)
expired = token = None
expired = 0
while True:
    page = client.search_runs(experiment_ids=[experiment], max_results=1000, page_token=token)
    for run in page:
        run_date = datetime.fromtimestamp(run.info.start_time / 1000)
        if run_date < cutoff and "keep" not in run.data.tags:
            versions = client.search_model_versions(f"run_id='{run.info.run_id}'")
            if not versions:
                expired += 1
                if delete:
                    client.delete_run(run.info.run_id)
    token = page.token
    if not token:
        break
print(expired)
"""


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} failed:\n{done.stderr[-3000:]}")
    return elapsed, done.stdout


def cairn_side(work: Path, plan_file: Path, artifacts: int) -> dict[str, object]:
    root = work / "cairn"
    root.mkdir()
    env = dict(os.environ)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([str(CAIRN), "init"], cwd=root, check=True, capture_output=True)
    started = time.perf_counter()
    timed([str(CAIRN_PY), "-c", CAIRN_SETUP, str(plan_file), str(artifacts)], root, env)
    setup = time.perf_counter() - started
    subprocess.run([str(CAIRN), "config", "retention.runs.max_age", f"{MAX_AGE_DAYS}d"],
                   cwd=root, check=True)
    subprocess.run([str(CAIRN), "config", "retention.runs.keep_if_tagged", "keep"], cwd=root,
                   check=True)
    dry, out = timed([str(CAIRN), "retention", "apply", "--dry-run", "--json"], root, env)
    plan = json.loads(out)
    apply, _ = timed([str(CAIRN), "retention", "apply", "--json"], root, env)
    objects = plan["objects"]["cache"]
    return {"setup_s": setup, "dry_run_s": dry, "apply_s": apply,
            "expired_runs": len(plan["runs"]), "objects": len(objects),
            "bytes": sum(objects.values())}


def mlflow_side(work: Path, plan_file: Path, artifacts: int) -> dict[str, object]:
    python = ensure_mlflow()
    root = work / "mlflow"
    root.mkdir()
    db = f"sqlite:///{root / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": db,
           "MLFLOW_ARTIFACT_ROOT": str(root / "artifacts")}
    # The default experiment's artifact root is ./mlruns under the working directory.
    started = time.perf_counter()
    timed([str(python), "-c", MLFLOW_SETUP, str(plan_file), str(artifacts)], root, env)
    setup = time.perf_counter() - started
    dry, out = timed([str(python), "-c", MLFLOW_CLEANUP, "dry-run"], root, env)
    expired = int(out.strip())
    before = _files(root / "mlruns")
    delete, _ = timed([str(python), "-c", MLFLOW_CLEANUP, "apply"], root, env)
    gc, _ = timed([str(python.parent / "mlflow"), "gc", "--backend-store-uri", db], root, env)
    return {"setup_s": setup, "dry_run_s": dry, "apply_s": delete + gc,
            "delete_runs_s": delete, "gc_s": gc, "expired_runs": expired,
            "objects": before - _files(root / "mlruns")}


def _files(directory: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(directory))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--artifacts", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="1,000 runs")
    parser.add_argument("--tools", default="mlflow,cairn")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    runs = 1000 if args.quick else args.runs
    tools = args.tools.split(",")
    work = Path(tempfile.mkdtemp(prefix="bench-retention-"))
    plan_file = work / "plan.json"
    plan_file.write_text(json.dumps(history(runs)))
    results: dict[str, object] = {"runs": runs, "artifacts_per_run": args.artifacts,
                                  "machine": platform.platform()}
    try:
        if "cairn" in tools:
            results["cairn"] = cairn_side(work, plan_file, args.artifacts)
            print("cairn", json.dumps(results["cairn"]), flush=True)
        if "mlflow" in tools:
            results["mlflow"] = mlflow_side(work, plan_file, args.artifacts)
            print("mlflow", json.dumps(results["mlflow"]), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    out = args.out or BENCH_DIR / "results" / f"retention-{'quick' if args.quick else 'full'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    _report(results)
    return 0


def _report(results: dict[str, object]) -> None:
    cairn, mlflow = results.get("cairn"), results.get("mlflow")
    print(f"\n{results['runs']:,} runs x {results['artifacts_per_run']} artifacts\n")
    print("| step | MLflow (s) | Cairn (s) | MLflow/Cairn |")
    print("|---|---|---|---|")
    for key, label in (("dry_run_s", "dry run"), ("apply_s", "apply")):
        m = mlflow.get(key) if isinstance(mlflow, dict) else None
        c = cairn.get(key) if isinstance(cairn, dict) else None
        ratio = f"{m / c:.1f}x" if isinstance(m, float) and isinstance(c, float) else "-"
        print(f"| {label} | {_f(m)} | {_f(c)} | {ratio} |")


def _f(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else "-"


if __name__ == "__main__":
    sys.exit(main())
