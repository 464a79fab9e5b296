"""Benchmark Cairn's artifact store against DVC on identical data.

    python benchmarks/bench_store.py [--quick] [--only NAME ...] [--tools dvc,cairn]
                                     [--out results.json] [--runs 3] [--workdir DIR] [--keep]

Each workload builds, per tool, a temporary git repository with the same data, warms the
page cache, and times one command (median of --runs runs; wall time and the child's peak
RSS from wait4). Prints a Markdown table and writes the raw numbers as JSON.
See benchmarks/README.md for what each workload means.
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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from datasets import DataCache, settle
from measure import Sample, Summary, measure, tail
from peers import BENCH_DIR, Peer, make_peers
from s3server import MotoServer
from workloads import FULL, QUICK, Repo, SetupError, Workload, catalogue

BASELINE = "baseline"
NA = "-"  # not measured


@dataclass
class Options:
    quick: bool
    only: list[str]
    tools: list[str]
    runs: int
    jobs: int
    timeout: float
    workdir: Path
    out: Path
    keep: bool
    cairn: str | None
    started: str


@dataclass
class Outcome:
    workload: Workload
    results: dict[str, Summary]  # by tool name, plus BASELINE


class Bench:
    """Runs workloads for each peer in scratch repositories under one work directory."""

    def __init__(self, opts: Options, peers: list[Peer]) -> None:
        self.opts = opts
        self.peers = peers
        self.data = DataCache(opts.workdir / "data")
        self.env = child_env(opts.workdir)
        self._moto: MotoServer | None = None

    def close(self) -> None:
        if self._moto is not None:
            self._moto.stop()

    def moto(self) -> MotoServer:
        if self._moto is None:
            self._moto = MotoServer(self.opts.workdir / "moto.log")
            print(f"  moto server on {self._moto.endpoint}")
        return self._moto

    # --- one workload -----------------------------------------------------------------

    def run(self, wl: Workload) -> Outcome:
        print(f"\n## {wl.name}: {wl.description}", flush=True)
        self.data.source(wl.data)
        if wl.remote == "s3":
            self.moto().reset()
        results: dict[str, Summary] = {}
        if wl.baseline:
            results[BASELINE] = self.run_baseline(wl)
        for peer in self.peers:
            if peer.name in wl.tools:
                results[peer.name] = self.run_peer(wl, peer)
        if not self.opts.keep:
            shutil.rmtree(self.opts.workdir / "runs" / wl.name, ignore_errors=True)
            os.sync()
            time.sleep(3)  # ext4 with online discard stays slow for a while after deletes
        return Outcome(wl, results)

    def run_peer(self, wl: Workload, peer: Peer) -> Summary:
        summary = Summary()
        repo: Repo | None = None
        try:
            for run in range(self.opts.runs):
                if repo is None or wl.fresh_repo:
                    self.discard(repo)
                    repo = self.build_repo(wl, peer, run)
                if wl.reset is not None:
                    wl.reset(repo, run)
                if not self.timed_run(wl, repo, summary):
                    break
        except SetupError as exc:
            summary.error = f"setup failed: {exc}"
        self.discard(repo)
        report_line(peer.label, summary)
        return summary

    def discard(self, repo: Repo | None) -> None:
        """Repositories are deleted with their workload, not between runs: on this kind
        of disk (ext4, online discard) mass deletes slow the file creations of the next
        timed run for seconds, which would measure the previous run, not this one."""

    def timed_run(self, wl: Workload, repo: Repo, summary: Summary) -> bool:
        settle(repo.base)
        sample = measure(wl.command(repo), repo.root, self.env, repo.log, self.opts.timeout)
        if sample.timed_out or sample.returncode != 0:
            summary.error = failure(sample, self.opts.timeout, repo)
            return False
        summary.samples.append(sample)
        problem = wl.check(repo, self.data.source(wl.data)) if wl.check else None
        if problem and problem not in summary.warnings:
            summary.warnings.append(problem)
        return True

    def build_repo(self, wl: Workload, peer: Peer, run: int) -> Repo:
        base = self.opts.workdir / "runs" / wl.name / f"{peer.name}-{run}"
        shutil.rmtree(base, ignore_errors=True)
        repo = Repo(peer, base, self.env, self.opts.jobs)
        repo.root.mkdir(parents=True)
        repo.sh(["git", "init", "-q"])
        for cmd in peer.init(base / "site-cache"):
            repo.sh(cmd)
        self.data.copy_into(wl.data, repo.root)
        if wl.remote is not None:
            self.attach_remote(repo, wl, run)
        for step in wl.prepare:
            step(repo)
        return repo

    def attach_remote(self, repo: Repo, wl: Workload, run: int) -> None:
        s3 = None
        if wl.remote == "local":
            remote_dir = repo.base / "remote"
            remote_dir.mkdir()
            repo.remote_url, repo.remote_dir = str(remote_dir), remote_dir
            repo.remote_count = lambda: sum(len(f) for _, _, f in os.walk(remote_dir))
        else:
            moto = self.moto()
            s3, prefix = moto.target, f"{repo.peer.name}/{wl.name}/{run}"
            repo.remote_url = moto.url(prefix)
            repo.remote_count = lambda: moto.count_objects(prefix)
        for cmd in repo.peer.add_remote(repo.remote_url, s3):
            repo.sh(cmd)

    def run_baseline(self, wl: Workload) -> Summary:
        """Read the data once and write it once, with fsync: the floor for any ``add``.

        Each run starts like a tool's run does — right after its own fresh copy of the
        data — since this VM's disk slows writes that follow a large write.
        """
        summary = Summary()
        for run in range(self.opts.runs):
            base = self.opts.workdir / "runs" / wl.name / f"{BASELINE}-{run}"
            base.mkdir(parents=True)
            self.data.copy_into(wl.data, base)
            cmd = ["dd", f"if={wl.data.path}", "of=copy.out", "bs=1M", "conv=fsync",
                   "status=none"]
            settle(base / wl.data.path)
            summary.samples.append(measure(cmd, base, self.env, base / "log.txt", 600))
        report_line("baseline", summary)
        return summary


def child_env(workdir: Path) -> dict[str, str]:
    """The tools' environment: no telemetry, no AWS metadata probing, isolated user config."""
    env = dict(os.environ)
    env.update(
        DVC_NO_ANALYTICS="1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(workdir / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(workdir / "aws-credentials"),
        XDG_CONFIG_HOME=str(workdir / "xdg-config"),
    )
    return env


def failure(sample: Sample, timeout: float, repo: Repo) -> str:
    what = f"timed out after {timeout:.0f}s" if sample.timed_out else f"exit {sample.returncode}"
    return f"{what}:\n{tail(repo.log)}"


def report_line(label: str, summary: Summary) -> None:
    if summary.error:
        print(f"  {label}: ERROR {summary.error}", flush=True)
        return
    runs = ", ".join(f"{s.seconds:.2f}" for s in summary.samples)
    line = f"  {label}: median {summary.median_s:.3f}s [{runs}], peak {summary.peak_mib:.0f} MiB"
    print(line + "".join(f"  WARNING: {w}" for w in summary.warnings), flush=True)


# --- report ----------------------------------------------------------------------------


def fmt_seconds(summary: Summary | None) -> str:
    if summary is None:
        return NA
    if summary.error or summary.median_s is None:
        return "error"
    return f"{summary.median_s:.3f}" + (" ⚠" if summary.warnings else "")


def fmt_mib(summary: Summary | None) -> str:
    if summary is None or summary.peak_mib is None:
        return NA
    return f"{summary.peak_mib:.0f}"


def ratio(num: Summary | None, den: Summary | None) -> str:
    a = num.median_s if num and not num.error else None
    b = den.median_s if den and not den.error else None
    return f"{a / b:.2f}" if a and b else NA


def markdown(outcomes: list[Outcome], peers: list[Peer]) -> str:
    names = [p.name for p in peers]
    both = "dvc" in names and "cairn" in names
    header = ["workload", "data", *[f"{p.label} s" for p in peers]]
    header += ["DVC/Cairn"] if both else []
    header += [f"{p.label} peak MiB" for p in peers]
    rows = [header, ["---"] * len(header)]
    for o in outcomes:
        row = [o.workload.name, o.workload.data.describe()]
        row += [fmt_seconds(o.results.get(n)) for n in names]
        row += [ratio(o.results.get("dvc"), o.results.get("cairn"))] if both else []
        row += [fmt_mib(o.results.get(n)) for n in names]
        rows.append(row)
    parts = ["\n".join("| " + " | ".join(r) + " |" for r in rows)]
    parts += [baseline_notes(outcomes, peers), growth_table(outcomes, peers), problems(outcomes)]
    return "\n\n".join(p for p in parts if p)


def baseline_notes(outcomes: list[Outcome], peers: list[Peer]) -> str:
    lines = []
    for o in outcomes:
        base = o.results.get(BASELINE)
        if base is None or base.median_s is None:
            continue
        lines.append(f"{o.workload.name}: baseline (dd read + write + fsync) {base.median_s:.3f}s")
        for p in peers:
            lines.append(f"- {p.label}/baseline: {ratio(o.results.get(p.name), base)}")
    return "\n".join(lines)


def growth_table(outcomes: list[Outcome], peers: list[Peer]) -> str:
    series = sorted(
        (o for o in outcomes if o.workload.scaling), key=lambda o: o.workload.data.nfiles()
    )
    if len(series) < 2:
        return ""
    rows = ["| files | " + " | ".join(f"{p.label} s | {p.label} µs/file" for p in peers) + " |"]
    rows.append("|---" * (1 + 2 * len(peers)) + "|")
    for o in series:
        n = o.workload.data.nfiles()
        cells = [f"{n:,}"]
        for p in peers:
            s = o.results.get(p.name)
            median = s.median_s if s is not None and not s.error else None
            cells += [f"{median:.3f}", f"{median / n * 1e6:.1f}"] if median else [NA, NA]
        rows.append("| " + " | ".join(cells) + " |")
    return "Clean status growth:\n\n" + "\n".join(rows)


def problems(outcomes: list[Outcome]) -> str:
    lines = []
    for o in outcomes:
        for tool, s in o.results.items():
            if s.error:
                first = s.error.splitlines()[0]
                lines.append(f"- {o.workload.name} / {tool}: {first}")
            lines += [f"- {o.workload.name} / {tool}: ⚠ {w}" for w in s.warnings]
    return "Problems:\n\n" + "\n".join(lines) if lines else ""


def to_json(outcomes: list[Outcome], peers: list[Peer], opts: Options) -> dict[str, object]:
    return {
        "meta": {
            "quick": opts.quick,
            "runs": opts.runs,
            "jobs": opts.jobs,
            "started": opts.started,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "tools": {p.name: {"exe": str(p.exe), "version": version_of(p)} for p in peers},
        },
        "workloads": {
            o.workload.name: {
                "description": o.workload.description,
                "data": o.workload.data.describe(),
                "nfiles": o.workload.data.nfiles(),
                "results": {tool: s.to_json() for tool, s in o.results.items()},
            }
            for o in outcomes
        },
    }


def version_of(peer: Peer, env: Mapping[str, str] | None = None) -> str:
    proc = subprocess.run(peer.version(), capture_output=True, text=True, env=env, check=False)
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[-1] if proc.returncode == 0 and lines else "unknown"


# --- command line ----------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small data: a smoke test in minutes")
    p.add_argument("--only", nargs="+", default=[], metavar="NAME", help="workloads to run")
    p.add_argument("--tools", default="dvc,cairn", help="comma-separated (default dvc,cairn)")
    p.add_argument("--runs", type=int, default=3, help="timed runs per tool (default 3)")
    p.add_argument("--jobs", "-j", type=int, default=8, help="push/pull parallelism (default 8)")
    p.add_argument("--timeout", type=float, default=1800, help="per command, seconds")
    p.add_argument("--workdir", type=Path, help="scratch parent directory (default: system tmp)")
    p.add_argument("--out", type=Path, help="JSON results (default benchmarks/results/*.json)")
    p.add_argument("--keep", action="store_true", help="keep scratch repositories and logs")
    p.add_argument("--cairn", help="cairn executable (default .venv/bin/cairn)")
    p.add_argument("--list", action="store_true", help="list workloads and exit")
    return p.parse_args(argv)


def options(ns: argparse.Namespace) -> Options:
    parent = ns.workdir or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    default_out = BENCH_DIR / "results" / ("quick.json" if ns.quick else "full.json")
    return Options(
        quick=ns.quick,
        only=ns.only,
        tools=[t.strip() for t in ns.tools.split(",") if t.strip()],
        runs=ns.runs,
        jobs=ns.jobs,
        timeout=ns.timeout,
        workdir=Path(tempfile.mkdtemp(prefix="cairn-bench-", dir=parent)),
        out=ns.out or default_out,
        keep=ns.keep,
        cairn=ns.cairn,
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def select(all_workloads: list[Workload], only: list[str]) -> list[Workload]:
    if not only:
        return all_workloads
    known = {w.name for w in all_workloads}
    unknown = sorted(set(only) - known)
    if unknown:
        sys.exit(f"unknown workload(s): {', '.join(unknown)}; see --list")
    return [w for w in all_workloads if w.name in only]


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(sys.argv[1:] if argv is None else argv)
    all_workloads = catalogue(QUICK if ns.quick else FULL)
    if ns.list:
        print("\n".join(f"{w.name:22} {w.description}" for w in all_workloads))
        return 0
    selected = select(all_workloads, ns.only)
    opts = options(ns)
    peers = make_peers(opts.tools, opts.cairn)
    names = {p.name for p in peers}
    chosen = [w for w in selected if names & set(w.tools)]
    print(f"scratch: {opts.workdir}")
    for peer in peers:  # also loads each tool's code into the page cache
        print(f"  {peer.label}: {version_of(peer)} ({peer.exe})")
    bench = Bench(opts, peers)
    try:
        outcomes = [bench.run(w) for w in chosen]
    finally:
        bench.close()
        if not opts.keep:
            shutil.rmtree(opts.workdir, ignore_errors=True)
    print("\n" + markdown(outcomes, peers))
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(to_json(outcomes, peers, opts), indent=2) + "\n")
    print(f"\nJSON: {opts.out}")
    return 1 if any(s.error for o in outcomes for s in o.results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
