"""Benchmark Cairn's pipelines (`repro`, `metrics diff`) against DVC on the same dvc.yaml.

    python benchmarks/bench_pipeline.py [--quick] [--runs N] [--stages 50] [--tools dvc,cairn]
                                        [--only NAME ...] [--out FILE] [--workdir DIR] [--keep]

Each tool gets its own scratch git repository holding the same dvc.yaml: a chain of
--stages stages (stage i copies stage i-1's output and appends a line), so the
commands themselves cost almost nothing and what is measured is the orchestration.
Both tools run with compiled bytecode (PYTHONPYCACHEPREFIX in the scratch directory, warmed
by the untimed setup), as an installed tool would.
Median of --runs runs (default 5; --quick 2), the tools taking turns run by run; wall time
and peak RSS as in bench_store.py.

  repro-noop     everything up to date                            timed: repro
  repro-all      first input rewritten before each run, so all    timed: repro
                 stages run; baseline: the same commands from a plain shell script
  metrics-diff   the chain plus an evaluate stage (metrics.json), timed: metrics diff v1 v2
                 committed and tagged v1 and v2 with different metrics

Targets: repro-noop DVC/Cairn >= 10; orchestration overhead per stage
((repro-all - baseline) / stages) DVC/Cairn >= 5.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench_store import child_env, failure, report_line, version_of
from datasets import settle
from measure import Summary, measure, tail
from peers import BENCH_DIR, Command, Peer, make_peers
from workloads import Repo, SetupError

BASELINE = "baseline"
NA = "-"
RAN = re.compile(r"^Running stage '[^']+':", re.MULTILINE)  # both tools print this per stage
METRICS_V1 = '{"acc": 0.812, "loss": 0.421, "f1": 0.774, "auc": 0.880}\n'
METRICS_V2 = '{"acc": 0.861, "loss": 0.352, "f1": 0.815, "auc": 0.913}\n'


@dataclass
class Options:
    quick: bool
    only: list[str]
    tools: list[str]
    runs: int
    stages: int
    timeout: float
    workdir: Path
    out: Path
    keep: bool
    cairn: str | None
    started: str


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    command: Callable[[Peer], Command]
    prepare: Callable[[Repo], None]  # untimed, after git init and the tool's init
    check: Callable[[str], str | None]  # the timed run's output -> a problem, if any
    reset: Callable[[Repo, int], None] | None = None  # untimed, before each timed run
    baseline: bool = False


# --- the pipeline ----------------------------------------------------------------------


def stage_out(i: int) -> str:
    return "in.txt" if i == 0 else f"s{i:02d}.txt"


def stage_cmd(i: int) -> str:
    """Copy the previous output and add a line: every output has its own content, as in a
    real pipeline (identical outputs would all be one cache object)."""
    return f"cat {stage_out(i - 1)} > {stage_out(i)} && echo s{i:02d} >> {stage_out(i)}"


def chain_yaml(stages: int, evaluate: bool) -> str:
    lines = ["stages:"]
    for i in range(1, stages + 1):
        dep, out = stage_out(i - 1), stage_out(i)
        lines += [f"  s{i:02d}:", f"    cmd: {stage_cmd(i)}", f"    deps: [{dep}]",
                  f"    outs: [{out}]"]
    if evaluate:
        lines += ["  evaluate:", "    cmd: cp scores.json metrics.json",
                  f"    deps: [scores.json, {stage_out(stages)}]",
                  "    metrics:", "    - metrics.json:", "        cache: false"]
    return "\n".join(lines) + "\n"


def baseline_script(stages: int) -> str:
    """The chain's commands, each through `sh -c` as the tools run them, and nothing else."""
    return "".join(f"sh -c '{stage_cmd(i)}'\n" for i in range(1, stages + 1))


def write(root: Path, rel: str, text: str) -> None:
    (root / rel).write_text(text)


def new_input(root: Path, run: int) -> None:
    """Bytes never seen before, so no tool can restore the stages from its run cache."""
    write(root, "in.txt", f"input of run {run} at {time.time_ns()}\n")


def commit_and_tag(repo: Repo, tag: str) -> None:
    repo.sh(["git", "add", "-A"])
    repo.sh(["git", "commit", "-q", "-m", tag])
    repo.sh(["git", "tag", tag])


def catalogue(stages: int) -> list[Workload]:
    def chain(repo: Repo) -> None:
        write(repo.root, "dvc.yaml", chain_yaml(stages, evaluate=False))
        new_input(repo.root, -1)
        repo.sh(repo.peer.repro())

    def tagged(repo: Repo) -> None:
        write(repo.root, "dvc.yaml", chain_yaml(stages, evaluate=True))
        new_input(repo.root, -1)
        write(repo.root, "scores.json", METRICS_V1)
        repo.sh(repo.peer.repro())
        commit_and_tag(repo, "v1")
        write(repo.root, "scores.json", METRICS_V2)
        repo.sh(repo.peer.repro())
        commit_and_tag(repo, "v2")

    def ran(expected: int) -> Callable[[str], str | None]:
        def check(output: str) -> str | None:
            count = len(RAN.findall(output))
            return None if count == expected else f"{count} stages ran, expected {expected}"
        return check

    def diffed(output: str) -> str | None:
        wanted = ("acc", "0.812", "0.861")
        return None if all(w in output for w in wanted) else "acc 0.812 -> 0.861 not shown"

    return [
        Workload("repro-noop", f"{stages}-stage chain, nothing changed",
                 lambda p: p.repro(), chain, ran(0)),
        Workload("repro-all", f"{stages}-stage chain, first input changed: all stages run",
                 lambda p: p.repro(), chain, ran(stages),
                 reset=lambda repo, run: new_input(repo.root, run), baseline=True),
        Workload("metrics-diff", f"{stages}-stage chain + evaluate, tags v1 and v2",
                 lambda p: p.metrics_diff("v1", "v2"), tagged, diffed),
    ]


# --- running ---------------------------------------------------------------------------


class Bench:
    def __init__(self, opts: Options, peers: list[Peer]) -> None:
        self.opts = opts
        self.peers = peers
        self.env = child_env(opts.workdir)
        # Compiled bytecode, as an installed tool has: without it an editable install would
        # compile Cairn's modules on every command. Kept in the scratch directory.
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env["PYTHONPYCACHEPREFIX"] = str(opts.workdir / "pycache")
        for role in ("AUTHOR", "COMMITTER"):  # the scratch repositories commit and tag
            self.env[f"GIT_{role}_NAME"] = "Cairn Bench"
            self.env[f"GIT_{role}_EMAIL"] = "bench@cairn.invalid"

    def run(self, wl: Workload) -> dict[str, Summary]:
        """Build each tool's repository, then alternate the tools run by run (and the
        baseline), so that on a shared machine a change in load hits both alike."""
        print(f"\n## {wl.name}: {wl.description}", flush=True)
        results: dict[str, Summary] = {}
        repos: dict[str, Repo] = {}
        for peer in self.peers:
            results[peer.name] = Summary()
            try:
                repos[peer.name] = self.build_repo(wl, peer)
            except SetupError as exc:
                results[peer.name].error = f"setup failed: {exc}"
        baseline_dir = self.baseline_dir(wl) if wl.baseline else None
        if baseline_dir is not None:
            results[BASELINE] = Summary()
        for run in range(self.opts.runs):
            if baseline_dir is not None:
                self.baseline_run(baseline_dir, run, results[BASELINE])
            for name, repo in repos.items():
                if results[name].error is None:
                    self.peer_run(wl, repo, run, results[name])
        if baseline_dir is not None:
            report_line("baseline", results[BASELINE])
        for peer in self.peers:
            report_line(peer.label, results[peer.name])
        return results

    def peer_run(self, wl: Workload, repo: Repo, run: int, summary: Summary) -> None:
        try:
            if wl.reset is not None:
                wl.reset(repo, run)
            self.timed_run(wl, repo, summary)
        except SetupError as exc:
            summary.error = f"setup failed: {exc}"

    def build_repo(self, wl: Workload, peer: Peer) -> Repo:
        base = self.opts.workdir / "runs" / wl.name / peer.name
        repo = Repo(peer, base, self.env, jobs=1)
        repo.root.mkdir(parents=True)
        repo.sh(["git", "init", "-q", "-b", "main"])
        for cmd in peer.init(base / "site-cache"):
            repo.sh(cmd)
        wl.prepare(repo)
        return repo

    def timed_run(self, wl: Workload, repo: Repo, summary: Summary) -> None:
        settle(repo.root)
        offset = repo.log.stat().st_size
        sample = measure(wl.command(repo.peer), repo.root, self.env, repo.log, self.opts.timeout)
        if sample.timed_out or sample.returncode != 0:
            summary.error = failure(sample, self.opts.timeout, repo)
            return
        summary.samples.append(sample)
        with open(repo.log, "rb") as log:
            log.seek(offset)
            problem = wl.check(log.read().decode(errors="replace"))
        if problem and problem not in summary.warnings:
            summary.warnings.append(problem)

    def baseline_dir(self, wl: Workload) -> Path:
        base = self.opts.workdir / "runs" / wl.name / BASELINE
        base.mkdir(parents=True)
        write(base, "chain.sh", baseline_script(self.opts.stages))
        return base

    def baseline_run(self, base: Path, run: int, summary: Summary) -> None:
        """The chain's commands from a shell script: what running them costs without a tool."""
        if summary.error is not None:
            return
        new_input(base, run)
        settle(base)
        sample = measure(["sh", "chain.sh"], base, self.env, base / "log.txt", self.opts.timeout)
        if sample.returncode != 0:
            summary.error = f"exit {sample.returncode}:\n{tail(base / 'log.txt')}"
        else:
            summary.samples.append(sample)


# --- report ----------------------------------------------------------------------------


def median(results: dict[str, Summary], name: str) -> float | None:
    s = results.get(name)
    return s.median_s if s is not None and not s.error else None


def overhead_ms(outcomes: dict[str, dict[str, Summary]], tool: str, stages: int) -> float | None:
    """(repro with every stage running - the same commands from a shell script) / stages."""
    results = outcomes.get("repro-all", {})
    total, base = median(results, tool), median(results, BASELINE)
    return (total - base) / stages * 1000 if total is not None and base is not None else None


def fmt(value: float | None, digits: int = 3) -> str:
    return NA if value is None else f"{value:.{digits}f}"


@dataclass(frozen=True)
class Row:
    """One measured quantity for both tools, and its target for DVC/Cairn if it has one."""

    what: str
    dvc: float | None
    cairn: float | None
    target: float | None = None
    digits: int = 3

    @property
    def ratio(self) -> float | None:
        return self.dvc / self.cairn if self.dvc is not None and self.cairn else None

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        return NA if self.ratio is None else ("pass" if self.ratio >= self.target else "MISS")

    def markdown(self) -> str:
        target = f"≥ {self.target:.0f}x" if self.target else "—"
        dvc, cairn = fmt(self.dvc, self.digits), fmt(self.cairn, self.digits)
        ratio = fmt(self.ratio, 2)
        return f"| {self.what} | {dvc} | {cairn} | {ratio} | {target} | {self.verdict} |"

    def to_json(self) -> dict[str, object]:
        return {"what": self.what, "dvc": self.dvc, "cairn": self.cairn, "ratio": self.ratio,
                "target": self.target, "verdict": self.verdict}


TARGETS = {"repro-noop": 10.0}


def rows(outcomes: dict[str, dict[str, Summary]], stages: int) -> list[Row]:
    found = []
    for name, results in outcomes.items():
        found.append(Row(f"{name} (s)", median(results, "dvc"), median(results, "cairn"),
                         TARGETS.get(name)))
        if name == "repro-all":
            found.append(Row("overhead per stage (ms)", overhead_ms(outcomes, "dvc", stages),
                             overhead_ms(outcomes, "cairn", stages), 5.0, digits=1))
    return found


def markdown(outcomes: dict[str, dict[str, Summary]], stages: int) -> str:
    table = ["| measured | DVC | Cairn | DVC/Cairn | target | |", "|---|---|---|---|---|---|"]
    table += [row.markdown() for row in rows(outcomes, stages)]
    parts = ["\n".join(table)]
    base = median(outcomes.get("repro-all", {}), BASELINE)
    if base is not None:
        parts.append(f"baseline: the {stages} commands from a shell script take {base:.3f} s "
                     f"({base / stages * 1000:.2f} ms each)")
    problems = []
    for name, results in outcomes.items():
        for tool, s in results.items():
            if s.error:
                problems.append(f"- {name} / {tool}: {s.error.splitlines()[0]}")
            problems += [f"- {name} / {tool}: ⚠ {w}" for w in s.warnings]
    if problems:
        parts.append("Problems:\n\n" + "\n".join(problems))
    return "\n\n".join(parts)


def to_json(outcomes: dict[str, dict[str, Summary]], peers: list[Peer], opts: Options,
            workloads: list[Workload]) -> dict[str, object]:
    described = {w.name: w.description for w in workloads}
    return {
        "meta": {
            "quick": opts.quick,
            "runs": opts.runs,
            "stages": opts.stages,
            "started": opts.started,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "loadavg_at_end": os.getloadavg()},  # the machine may be shared
            "tools": {p.name: {"exe": str(p.exe), "version": version_of(p)} for p in peers},
        },
        "workloads": {
            name: {"description": described[name],
                   "results": {tool: s.to_json() for tool, s in results.items()}}
            for name, results in outcomes.items()
        },
        "summary": [row.to_json() for row in rows(outcomes, opts.stages)],
    }


# --- command line ----------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2 runs instead of 5: a smoke test")
    p.add_argument("--runs", type=int, help="timed runs per tool (default 5, --quick 2)")
    p.add_argument("--stages", type=int, default=50, help="stages in the chain (default 50)")
    p.add_argument("--only", nargs="+", default=[], metavar="NAME", help="workloads to run")
    p.add_argument("--tools", default="dvc,cairn", help="comma-separated (default dvc,cairn)")
    p.add_argument("--timeout", type=float, default=600, help="per command, seconds")
    p.add_argument("--workdir", type=Path, help="scratch parent directory (default: system tmp)")
    p.add_argument("--out", type=Path, help="JSON results (default benchmarks/results/"
                                             "pipeline[-quick].json)")
    p.add_argument("--keep", action="store_true", help="keep scratch repositories and logs")
    p.add_argument("--cairn", help="cairn executable (default .venv/bin/cairn)")
    return p.parse_args(argv)


def options(ns: argparse.Namespace) -> Options:
    parent = ns.workdir or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    default_out = BENCH_DIR / "results" / ("pipeline-quick.json" if ns.quick else "pipeline.json")
    return Options(
        quick=ns.quick,
        only=ns.only,
        tools=[t.strip() for t in ns.tools.split(",") if t.strip()],
        runs=ns.runs or (2 if ns.quick else 5),
        stages=ns.stages,
        timeout=ns.timeout,
        workdir=Path(tempfile.mkdtemp(prefix="cairn-bench-pipeline-", dir=parent)),
        out=ns.out or default_out,
        keep=ns.keep,
        cairn=ns.cairn,
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(sys.argv[1:] if argv is None else argv)
    workloads = catalogue(ns.stages)
    unknown = sorted(set(ns.only) - {w.name for w in workloads})
    if unknown:
        sys.exit(f"unknown workload(s): {', '.join(unknown)}; choose from "
                 f"{', '.join(w.name for w in workloads)}")
    chosen = [w for w in workloads if not ns.only or w.name in ns.only]
    opts = options(ns)
    peers = make_peers(opts.tools, opts.cairn)
    print(f"scratch: {opts.workdir}")
    for peer in peers:  # also loads each tool's code into the page cache
        print(f"  {peer.label}: {version_of(peer)} ({peer.exe})")
    bench = Bench(opts, peers)
    try:
        outcomes = {w.name: bench.run(w) for w in chosen}
        report = markdown(outcomes, opts.stages)
        data = to_json(outcomes, peers, opts, workloads)
    finally:
        if not opts.keep:
            shutil.rmtree(opts.workdir, ignore_errors=True)
    print("\n" + report)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"\nJSON: {opts.out}")
    return 1 if any(s.error for results in outcomes.values() for s in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
