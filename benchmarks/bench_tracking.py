"""Benchmark Cairn's tracking API and model registry against MLflow, in one run.

    python benchmarks/bench_tracking.py [--quick] [--only NAME ...] [--tools mlflow,cairn]
                                        [--runs 3] [--loads 5] [--out FILE] [--keep]

Both tools run the same workload code (tracking_workloads.py, with only the import
changed) against a local SQLite database in a fresh scratch git repository, each workload
in its own process: MLflow from its own virtualenv (benchmarks/.venv-mlflow), Cairn from
the project's. Each script times its workload itself, so interpreter start-up, imports and
opening the database are reported separately, not counted in the workload. Prints a
Markdown table (medians, MLflow/Cairn ratio, target, pass/miss) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from peers import BENCH_DIR, PROJECT_ROOT, ensure_mlflow

SCRIPT = BENCH_DIR / "tracking_workloads.py"
LABELS = {"mlflow": "MLflow", "cairn": "Cairn"}


@dataclass(frozen=True)
class Workload:
    name: str  # the script's workload
    full: int
    quick: int
    what: str


WORKLOADS = [
    Workload("metric-loop", 10_000, 1_000, "log_metric in a loop, one run"),
    Workload("metric-batches", 100, 10, "log_metrics of 100 keys per step, one run"),
    Workload("runs-search", 2_000, 200, "runs of 5 params + 5 metrics, then search_runs"),
    Workload("registry-promote", 100, 10, "register_model + promote with archive_existing"),
    Workload("load", 0, 0, "pyfunc.load_model of a small sklearn model, fresh process"),
]


@dataclass(frozen=True)
class Row:
    """One line of the report: a phase of a workload, and Cairn's target against MLflow."""

    label: str
    workload: str
    phase: str
    target: float | None


def rows(sizes: dict[str, int]) -> list[Row]:
    m, b, r, v = (sizes[n] for n in ("metric-loop", "metric-batches", "runs-search",
                                       "registry-promote"))
    return [
        Row(f"log_metric loop, {m:,} steps", "metric-loop", "log", 20),
        Row(f"log_metrics, {b:,} batches of 100", "metric-batches", "log", 5),
        Row(f"create {r:,} runs (5 params + 5 metrics)", "runs-search", "create", 5),
        Row(f"search_runs over {r:,}: filter, order, top 100", "runs-search", "search", 5),
        Row("(first search_runs in the process)", "runs-search", "search_first", None),
        Row(f"register + promote {v} versions", "registry-promote", "total", 5),
        Row("(register_model only)", "registry-promote", "register", None),
        Row("(transition_model_version_stage only)", "registry-promote", "promote", None),
        # `import mlflow` loads numpy/pandas/scipy, `import cairn` nothing: only start-up
        # plus the first load compares like with like in a new process.
        Row("new process: start-up + open + load_model", "load", "cold", 2),
        Row("(the first load_model call alone)", "load", "load", None),
        Row("load_model of another version, libraries loaded", "load", "load_warm", 2),
        Row("(load_model of that version again)", "load", "load_again", None),
        Row("start-up: interpreter + import", "*", "import", None),
        Row("set-up: create a new database + experiment", "*", "setup_new", None),
        Row("set-up: open an existing database", "load", "setup", None),
    ]


@dataclass
class Result:
    """One process: its timed phases, start-up, wall time, peak RSS and its own check."""

    phases: dict[str, float] = field(default_factory=dict)
    check: str = "ok"
    version: str = "?"
    wall: float = 0.0
    peak_mib: float = 0.0
    error: str | None = None


@dataclass
class Bench:
    tools: dict[str, Path]  # tool -> python executable
    workdir: Path
    runs: int
    loads: int
    timeout: float
    results: dict[str, dict[str, list[Result]]] = field(default_factory=dict)

    def scratch(self, tool: str, name: str) -> Path:
        """A fresh git repository with one commit (both tools record the commit of a run)."""
        base = Path(tempfile.mkdtemp(prefix=f"{tool}-{name}-", dir=self.workdir))
        env = child_env(self.workdir)
        for cmd in (["git", "init", "-q"], ["git", "commit", "-q", "--allow-empty", "-m", "b"]):
            subprocess.run(cmd, cwd=base, env=env, check=True, capture_output=True)
        if tool == "cairn":
            cairn = self.tools["cairn"].with_name("cairn")
            subprocess.run([str(cairn), "init", "--no-hooks"], cwd=base, env=env, check=True,
                           capture_output=True)
        return base

    def run_script(self, tool: str, workload: str, base: Path, n: int) -> Result:
        cmd = [str(self.tools[tool]), str(SCRIPT), tool, workload,
               "--db", f"sqlite:///{base / 'tracking.db'}",
               "--artifacts", str(base / "artifacts"), "--n", str(n)]
        result = run_workload(cmd, base, child_env(self.workdir), self.timeout, workload)
        if "load" in result.phases:
            phases = result.phases
            phases["cold"] = phases["import"] + phases["setup"] + phases["load"]
        return result

    def warm_up(self) -> None:
        """Untimed: every code path once per tool, so bytecode is compiled and the page
        cache holds both tools' files before anything is measured."""
        print("warming up (untimed)", flush=True)
        steps = [["metric-batches"], ["runs-search"], ["registry-promote"], ["load-setup", "load"]]
        for tool in self.tools:
            for names in steps:  # each in its own repository; "load" reads "load-setup"'s
                base = self.scratch(tool, "warm")
                for name in names:
                    result = self.run_script(tool, name, base, 1)
                    if result.error:
                        print(f"  {LABELS[tool]} warm-up {name}: {result.error}", flush=True)

    def once(self, tool: str, wl: Workload, n: int, load_base: Path | None) -> Result:
        """One timed process: a load from the prepared repository, or a fresh one."""
        if load_base is not None:
            return self.run_script(tool, "load", load_base, 0)
        result = self.run_script(tool, wl.name, self.scratch(tool, wl.name), n)
        result.phases["setup_new"] = result.phases.get("setup", 0.0)
        return result

    def run(self, wl: Workload, n: int) -> None:
        """The tools take turns, run by run (alternating who goes first), so a change in
        the load of this shared machine during a workload hits both alike."""
        print(f"\n## {wl.name} (n={n}): {wl.what}", flush=True)
        got: dict[str, list[Result]] = {tool: [] for tool in self.tools}
        self.results[wl.name] = got
        bases: dict[str, Path | None] = dict.fromkeys(self.tools)
        if wl.name == "load":  # one model registry per tool, loaded from many processes
            for tool in self.tools:
                base = bases[tool] = self.scratch(tool, wl.name)
                setup = self.run_script(tool, "load-setup", base, 0)
                if setup.error or setup.check != "ok":
                    got[tool].append(setup)
                    report(tool, setup)
        for i in range(self.loads if wl.name == "load" else self.runs):
            order = list(self.tools) if i % 2 == 0 else list(reversed(self.tools))
            for tool in order:
                if any(r.error or r.check != "ok" for r in got[tool]):
                    continue  # a tool that failed once is not run again
                got[tool].append(self.once(tool, wl, n, bases[tool]))
                report(tool, got[tool][-1])


def report(tool: str, r: Result) -> None:
    shown = ", ".join(f"{k} {v:.3f}" for k, v in r.phases.items())
    print(f"  {LABELS[tool]}: {r.error or shown}"
          + ("" if r.check == "ok" else f"  CHECK FAILED: {r.check}"), flush=True)


def run_workload(cmd: list[str], base: Path, env: dict[str, str], timeout: float,
                 label: str) -> Result:
    """Run one workload process in `base` (its output appended to log.txt) and read the
    `BENCH-RESULT {json}` line it prints: its phases, start-up, set-up, wall, peak RSS."""
    log_path = base / "log.txt"
    with open(log_path, "a") as log:
        spawned = time.time()
        proc = subprocess.Popen(cmd, cwd=base, env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        status, usage = wait(proc, timeout)
    wall = time.time() - spawned
    found = [ln for ln in log_path.read_text().splitlines() if ln.startswith("BENCH-RESULT")]
    if status != 0 or not found:
        tail = "\n".join(log_path.read_text().splitlines()[-12:])
        return Result(error=f"{label} exited {status}:\n{tail}", wall=wall)
    out = json.loads(found[-1].split(" ", 1)[1])
    phases = dict(out["phases"])
    phases["import"] = out["imported"] - spawned
    phases["setup"] = out["ready"] - out["imported"]
    return Result(phases, out["check"], out["version"], wall, usage / 1024)


def wait(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, int]:
    """Reap ``proc`` with wait4 (for its peak RSS, KiB); kill it after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_maxrss
        if time.monotonic() > deadline:
            proc.kill()
        time.sleep(0.01)


def child_env(workdir: Path) -> dict[str, str]:
    """No telemetry, no inherited tracking settings, isolated user config, a git identity."""
    # Bytecode is written and reused, as for an installed tool (a caller's
    # PYTHONDONTWRITEBYTECODE=1 would make every process recompile Cairn's edited modules).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", "MLFLOW_"))
           and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
               XDG_CONFIG_HOME=str(workdir / "xdg-config"), HOME=str(workdir / "home"),
               GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@cairn.invalid",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@cairn.invalid",
)
    return env


# --- report ----------------------------------------------------------------------------


def median_of(results: list[Result], phase: str) -> float | None:
    values = [r.phases[phase] for r in results if not r.error and phase in r.phases]
    return statistics.median(values) if values else None


def row_value(bench: Bench, row: Row, tool: str) -> float | None:
    if row.workload == "*":  # start-up: every process of this tool
        every = [r for by_tool in bench.results.values() for r in by_tool.get(tool, [])]
        return median_of(every, row.phase)
    return median_of(bench.results.get(row.workload, {}).get(tool, []), row.phase)


def summarise(bench: Bench, sizes: dict[str, int]) -> list[dict[str, object]]:
    table = []
    for row in rows(sizes):
        mlflow, cairn = row_value(bench, row, "mlflow"), row_value(bench, row, "cairn")
        ratio = mlflow / cairn if mlflow is not None and cairn else None
        verdict = None
        if row.target is not None and ratio is not None:
            verdict = "pass" if ratio >= row.target else "miss"
        table.append({"label": row.label, "workload": row.workload, "phase": row.phase,
                      "mlflow_s": mlflow, "cairn_s": cairn, "ratio": ratio,
                      "target": row.target, "verdict": verdict})
    return table


def markdown(table: list[dict[str, object]], bench: Bench) -> str:
    def sec(v: object) -> str:
        return "-" if v is None else f"{v:.3f}" if isinstance(v, float) and v < 10 else f"{v:.1f}"

    lines = ["| workload | MLflow s | Cairn s | MLflow/Cairn | target | |", "|---" * 6 + "|"]
    for t in table:
        ratio = "-" if t["ratio"] is None else f"{t['ratio']:.1f}x"
        target = "" if t["target"] is None else f"≥ {t['target']:g}x"
        lines.append(f"| {t['label']} | {sec(t['mlflow_s'])} | {sec(t['cairn_s'])} | {ratio} "
                     f"| {target} | {t['verdict'] or ''} |")
    problems = [f"- {wl} / {LABELS[tool]}: {(r.error or r.check).splitlines()[0]}"
                for wl, by_tool in bench.results.items() for tool, rs in by_tool.items()
                for r in rs if r.error or r.check != "ok"]
    return "\n".join(lines + (["", "Problems:", *problems] if problems else []))


def to_json(bench: Bench, table: list[dict[str, object]], ns: argparse.Namespace,
            sizes: dict[str, int], started: str, load_before: float) -> dict[str, object]:
    versions = {tool: next((r.version for by in bench.results.values() for r in by.get(tool, [])
                            if not r.error), "?") for tool in bench.tools}
    return {
        "meta": {"quick": ns.quick, "runs": ns.runs, "loads": ns.loads, "sizes": sizes,
                 "started": started, "versions": versions,
                 # other work on the machine slows both tools: the 1-minute load average
                 "load_average": {"before": load_before, "after": os.getloadavg()[0]},
                 "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                             "python": platform.python_version()}},
        "table": table,
        "processes": {wl: {tool: [r.__dict__ for r in rs] for tool, rs in by_tool.items()}
                      for wl, by_tool in bench.results.items()},
    }


# --- command line ----------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    p.add_argument("--only", nargs="+", default=[], metavar="NAME",
                   choices=[w.name for w in WORKLOADS], help="workloads to run")
    p.add_argument("--tools", default="mlflow,cairn", help="comma-separated (default both)")
    p.add_argument("--runs", type=int, default=3, help="processes per workload (default 3)")
    p.add_argument("--loads", type=int, default=5, help="fresh load_model processes (default 5)")
    p.add_argument("--timeout", type=float, default=1800, help="per process, seconds")
    p.add_argument("--workdir", type=Path, help="scratch parent directory (default: system tmp)")
    p.add_argument("--out", type=Path, help="JSON (default benchmarks/results/tracking*.json)")
    p.add_argument("--keep", action="store_true", help="keep scratch repositories and logs")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(sys.argv[1:] if argv is None else argv)
    tools: dict[str, Path] = {}
    for tool in (t.strip() for t in ns.tools.split(",") if t.strip()):
        if tool not in LABELS:
            sys.exit(f"unknown tool {tool!r}; choose from mlflow, cairn")
        tools[tool] = ensure_mlflow() if tool == "mlflow" else PROJECT_ROOT / ".venv/bin/python"
    sizes = {w.name: w.quick if ns.quick else w.full for w in WORKLOADS}
    parent = ns.workdir or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="cairn-bench-tracking-", dir=parent))
    started, load_before = time.strftime("%Y-%m-%dT%H:%M:%S%z"), os.getloadavg()[0]
    print(f"scratch: {workdir} (load average {load_before:.2f})")
    bench = Bench(tools, workdir, ns.runs, ns.loads, ns.timeout)
    try:
        bench.warm_up()
        for wl in WORKLOADS:
            if not ns.only or wl.name in ns.only:
                bench.run(wl, sizes[wl.name])
    finally:
        if not ns.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    table = summarise(bench, sizes)
    print("\n" + markdown(table, bench))
    out = ns.out or BENCH_DIR / "results" / ("tracking-quick.json" if ns.quick else "tracking.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    report = to_json(bench, table, ns, sizes, started, load_before)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nJSON: {out}")
    failed = any(r.error or r.check != "ok" for by in bench.results.values()
                 for rs in by.values() for r in rs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
