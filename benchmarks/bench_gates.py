"""Benchmark the cost of Cairn's promotion gates, against MLflow's plain promotions, in one run.

    python benchmarks/bench_gates.py [--quick] [--runs 3] [--out FILE] [--profile] [--keep]

Three variants of the same 100 promotions (`MlflowClient().transition_model_version_stage`
of versions 1..100, odd ones to Staging and even ones to Production,
archive_existing_versions=False), each a fresh process per run against a local SQLite
database (`sqlite:///…/tracking.db`) in a fresh scratch git repository:

    mlflow        MLflow (its own virtualenv, benchmarks/.venv-mlflow), no gates
    cairn         Cairn, no gate policy
    cairn-gates   Cairn, a three-rule metric policy (f1 min_improvement 0, accuracy min
                  0.5, loss max 10) on Staging and Production, which every version passes

and a `smoke` process (Cairn): `Client().check_gates(name, version, "Production")` of an
iris SGDClassifier with a `require: smoke_test` policy, and a plain `load_model(uri)
.predict(example)` in a fresh `python -c` process for context. The variants take turns
run by run (rotating who goes first); setup (runs, metrics, registering, the policy) is
untimed and each process times its own loop (gate_workloads.py). Prints a Markdown
table of medians and writes JSON; --profile adds cProfile's top entries of each Cairn
loop.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

from bench_tracking import Result, child_env, median_of, run_workload
from peers import BENCH_DIR, PROJECT_ROOT, ensure_mlflow

SCRIPT = BENCH_DIR / "gate_workloads.py"


@dataclass(frozen=True)
class Variant:
    key: str
    tool: str  # the interpreter: mlflow or cairn
    workload: str  # gate_workloads.py's workload
    label: str


PROMOTIONS = [
    Variant("mlflow", "mlflow", "promote", "MLflow, no gates"),
    Variant("cairn", "cairn", "promote", "Cairn, no gates"),
    Variant("cairn-gates", "cairn", "promote-gated", "Cairn, 3-rule gates"),
]
SMOKE = Variant("smoke", "cairn", "smoke", "Cairn, smoke_test gate")


@dataclass
class Bench:
    pythons: dict[str, Path]  # tool -> interpreter
    workdir: Path
    runs: int
    timeout: float
    results: dict[str, list[Result]] = field(default_factory=dict)

    def env(self, tool: str) -> dict[str, str]:
        env = child_env(self.workdir)
        if tool == "mlflow":  # Cairn's sources on PYTHONPATH are Cairn's business only
            env.pop("PYTHONPATH", None)
        return env

    def scratch(self, v: Variant) -> Path:
        """A fresh git repository with one commit (and `cairn init` for Cairn)."""
        base = Path(tempfile.mkdtemp(prefix=f"{v.key}-", dir=self.workdir))
        cmds = [["git", "init", "-q"], ["git", "commit", "-q", "--allow-empty", "-m", "b"]]
        if v.tool == "cairn":
            cmds.append([str(self.pythons["cairn"]), "-m", "cairn", "init", "--no-hooks"])
        for cmd in cmds:
            subprocess.run(cmd, cwd=base, env=self.env(v.tool), check=True,
                           capture_output=True)
        return base

    def once(self, v: Variant, n: int, profile: Path | None = None) -> Result:
        """One process in a fresh repository: its phases, start-up, wall time, peak RSS."""
        base = self.scratch(v)
        cmd = [str(self.pythons[v.tool]), str(SCRIPT), v.tool, v.workload,
               "--db", f"sqlite:///{base / 'tracking.db'}",
               "--artifacts", str(base / "artifacts"), "--n", str(n)]
        if profile is not None:
            cmd += ["--profile", str(profile)]
        result = run_workload(cmd, base, self.env(v.tool), self.timeout, v.key)
        if result.phases:
            result.phases["wall"] = result.wall
        return result

    def run(self, variants: list[Variant], n: int) -> None:
        """Run by run, every variant once, rotating who goes first, so a change in the
        load of this shared machine hits all of them alike."""
        for v in variants:
            self.results.setdefault(v.key, [])
        for i in range(self.runs):
            shift = i % len(variants)
            for v in variants[shift:] + variants[:shift]:
                got = self.results[v.key]
                if any(r.error or r.check != "ok" for r in got):
                    continue  # a variant that failed once is not run again
                got.append(self.once(v, n))
                report(v, got[-1])

    def warm_up(self, variants: list[Variant]) -> None:
        """Untimed: each variant once with 2 versions, so bytecode is compiled and the
        page cache holds both tools' files before anything is measured."""
        print("warming up (untimed)", flush=True)
        for v in variants:
            r = self.once(v, 2)
            if r.error or r.check != "ok":
                print(f"  {v.label} warm-up: {r.error or r.check}", flush=True)


def report(v: Variant, r: Result) -> None:
    shown = ", ".join(f"{k} {val:.4f}" for k, val in r.phases.items())
    print(f"  {v.label}: {r.error or shown}"
          + ("" if r.check == "ok" else f"  CHECK FAILED: {r.check}"), flush=True)


def profile_loops(bench: Bench, n: int, top: int = 10) -> dict[str, str]:
    """cProfile of each Cairn promotion loop (one extra, untimed process each)."""
    found = {}
    for v in PROMOTIONS[1:]:
        stats_file = bench.workdir / f"{v.key}.prof"
        r = bench.once(v, n, profile=stats_file)
        if r.error or not stats_file.exists():
            found[v.key] = f"profile failed: {r.error}"
            continue
        text = StringIO()
        stats = pstats.Stats(str(stats_file), stream=text)
        stats.sort_stats("cumulative").print_stats(top)
        # the generic entries (SQLAlchemy's execute) hide which of Cairn's steps costs
        # what: the same listing restricted to Cairn's own functions
        stats.print_stats(r"cairn[/\\](registry|store|tracking)", 2 * top)
        found[v.key] = text.getvalue()
    return found


# --- report ----------------------------------------------------------------------------


def med(bench: Bench, key: str, phase: str) -> float | None:
    return median_of(bench.results.get(key, []), phase)


def summarise(bench: Bench, n: int) -> dict[str, object]:
    keys = [v.key for v in PROMOTIONS]
    rows = [
        (f"{n} promotions, s (timed loop)", "promote", 1.0),
        ("per promotion, ms", "per_promotion", 1000.0),
        (f"… first {max(n // 10, 1)} promotions, ms each", "first_tenth", 1000.0),
        (f"… last {max(n // 10, 1)} promotions, ms each", "last_tenth", 1000.0),
        ("start-up: interpreter + import, s", "import", 1.0),
        ("set-up: create database + experiment, s", "setup", 1.0),
        (f"untimed preparation: {n} runs + versions (+ policy), s", "prepare", 1.0),
        ("process wall time, s", "wall", 1.0),
    ]
    table = [{"label": label, "phase": phase,
              **{k: (None if (x := med(bench, k, phase)) is None else x * scale)
                 for k in keys}} for label, phase, scale in rows]
    mlflow, plain, gated = (med(bench, k, "per_promotion") for k in keys)
    verdict: dict[str, object] = {
        "gate_overhead_ms": None if plain is None or gated is None else (gated - plain) * 1000,
        "mlflow_over_cairn_gates": None if mlflow is None or not gated else mlflow / gated,
        "mlflow_over_cairn": None if mlflow is None or not plain else mlflow / plain,
    }
    ratio = verdict["mlflow_over_cairn_gates"]
    verdict["target"] = None if ratio is None else ("pass" if ratio > 1 else "miss")
    smoke = {phase: med(bench, SMOKE.key, phase)
             for phase in ("check_gates", "check_gates_first", "plain_load_predict", "import",
                           "wall")}
    return {"table": table, "verdict": verdict, "smoke": smoke}


def markdown(summary: dict[str, object], bench: Bench, n: int) -> str:
    def num(v: object) -> str:
        return "-" if not isinstance(v, float) else f"{v:.3f}" if v < 10 else f"{v:.1f}"

    table = summary["table"]
    verdict = summary["verdict"]
    smoke = summary["smoke"]
    assert isinstance(table, list) and isinstance(verdict, dict) and isinstance(smoke, dict)
    lines = ["| " + " | ".join(["measurement", *(v.label for v in PROMOTIONS)]) + " |",
             "|---" * (1 + len(PROMOTIONS)) + "|"]
    for row in table:
        lines.append(f"| {row['label']} | "
                     + " | ".join(num(row[v.key]) for v in PROMOTIONS) + " |")
    overhead, ratio, plain = (verdict[k] for k in ("gate_overhead_ms", "mlflow_over_cairn_gates",
                                                   "mlflow_over_cairn"))
    lines += ["",
              f"- gate overhead per promotion (Cairn with gates minus without): {num(overhead)} ms",
              "- MLflow (no gates) / Cairn with gates, per promotion: "
              + ("-" if ratio is None else f"{ratio:.2f}x")
              + f" (target > 1x: {verdict['target'] or '-'}); MLflow / Cairn without gates: "
              + ("-" if plain is None else f"{plain:.2f}x"),
              "",
              "| smoke_test (Cairn) | s |", "|---|---|",
              f"| `check_gates(name, v, \"Production\")`, `require: smoke_test`, median "
              f"| {num(smoke['check_gates'])} |",
              f"| (the first `check_gates` of a process) | {num(smoke['check_gates_first'])} |",
              f"| plain `load_model(uri).predict(example)` in a fresh `python -c` process "
              f"| {num(smoke['plain_load_predict'])} |"]
    problems = [f"- {key}: {(r.error or r.check).splitlines()[0]}"
                for key, rs in bench.results.items() for r in rs if r.error or r.check != "ok"]
    return "\n".join(lines + (["", "Problems:", *problems] if problems else []))


# --- command line ----------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10 promotions, 1 smoke process")
    p.add_argument("--runs", type=int, default=3, help="processes per variant (default 3)")
    p.add_argument("--n", type=int, help="promotions per process (default 100; 10 with --quick)")
    p.add_argument("--no-smoke", action="store_true", help="skip the smoke_test measurement")
    p.add_argument("--profile", action="store_true",
                   help="also cProfile each Cairn loop (untimed extra processes)")
    p.add_argument("--cairn-python", type=Path,
                   help="interpreter with Cairn (default .venv/bin/python, else this one)")
    p.add_argument("--timeout", type=float, default=900, help="per process, seconds")
    p.add_argument("--workdir", type=Path, help="scratch parent directory (default: system tmp)")
    p.add_argument("--out", type=Path, help="JSON (default benchmarks/results/gates.json, "
                   "gates-quick.json with --quick)")
    p.add_argument("--keep", action="store_true", help="keep scratch repositories and logs")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(sys.argv[1:] if argv is None else argv)
    n = ns.n or (10 if ns.quick else 100)
    project_python = PROJECT_ROOT / ".venv/bin/python"
    cairn_python = ns.cairn_python or (project_python if project_python.exists()
                                       else Path(sys.executable))
    pythons = {"mlflow": ensure_mlflow(), "cairn": cairn_python}
    parent = ns.workdir or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="cairn-bench-gates-", dir=parent))
    started, load_before = time.strftime("%Y-%m-%dT%H:%M:%S%z"), os.getloadavg()[0]
    print(f"scratch: {workdir} (load average {load_before:.2f}); {n} promotions, "
          f"{ns.runs} runs", flush=True)
    bench = Bench(pythons, workdir, ns.runs, ns.timeout)
    variants = PROMOTIONS + ([] if ns.no_smoke else [SMOKE])
    profiles: dict[str, str] = {}
    try:
        bench.warm_up(variants)
        print(f"\n## {n} promotions: {', '.join(v.label for v in PROMOTIONS)}", flush=True)
        bench.run(PROMOTIONS, n)
        if not ns.no_smoke:
            print("\n## smoke_test gate", flush=True)
            smoke_runs, bench.runs = bench.runs, 1 if ns.quick else bench.runs
            bench.run([SMOKE], 0)
            bench.runs = smoke_runs
        if ns.profile:
            print("\n## cProfile of the Cairn loops (untimed)", flush=True)
            profiles = profile_loops(bench, n)
    finally:
        if not ns.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = summarise(bench, n)
    print("\n" + markdown(summary, bench, n))
    for key, text in profiles.items():
        print(f"\n### cProfile, {key} ({n} promotions), top entries by cumulative time\n")
        print("\n".join(ln for ln in text.splitlines() if ln.strip()))
    out = ns.out or BENCH_DIR / "results" / ("gates-quick.json" if ns.quick else "gates.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    versions = {v.key: next((r.version for r in bench.results.get(v.key, []) if not r.error),
                            "?") for v in variants}
    document = {
        "meta": {"quick": ns.quick, "runs": ns.runs, "promotions": n, "started": started,
                 "versions": versions,
                 "sequence": "version i to Staging if i is odd, else Production; "
                             "archive_existing_versions=False",
                 "load_average": {"before": load_before, "after": os.getloadavg()[0]},
                 "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                             "python": platform.python_version()}},
        **summary,
        "profiles": profiles,
        "processes": {key: [r.__dict__ for r in rs] for key, rs in bench.results.items()},
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nJSON: {out}")
    failed = any(r.error or r.check != "ok" for rs in bench.results.values() for r in rs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
