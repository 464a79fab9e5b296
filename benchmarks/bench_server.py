"""Benchmark `cairn server` against `mlflow server` over MLflow's REST routes, in one run.

    python benchmarks/bench_server.py [--quick] [--backends sqlite,postgres] [--workers 2]
        [--clients 1,8,32] [--only log-batch,search,latest,alias] [--cap 20] [--out FILE]

Both servers run on 127.0.0.1 on this machine with the same number of workers, one after
the other, each on its own fresh database (SQLite file, or a database of one throwaway
PostgreSQL server, tests/pg_server.py) and a local artifact directory. MLflow runs from
its own virtualenv (benchmarks/.venv-mlflow, plus psycopg for PostgreSQL); Cairn is this
tree's `python -m cairn server`. Both are byte-compiled before they start.

The clients are the same for both: plain `http.client` connections (keep-alive, one per
client) on threads spread over a few forked processes, started together, each making
its share of a fixed number of requests (or stopping at the time cap). Workloads, all on
/api/2.0/mlflow/…:

    log-batch  POST runs/log-batch: 10 metrics + 5 new params into one of 32 runs
    search     POST runs/search over an experiment of 10,000 runs (seeded by log-batch):
               `metrics.m > 0.5`, order by metrics.m DESC, max_results 100
    latest     POST registered-models/get-latest-versions of a model with 10 versions
    alias      GET  registered-models/alias (the version an alias names)

For each: throughput (answered requests, errors not counted / wall time from the start
signal to the last answer)
and p50/p99 latency at each client count. Memory: the server's process tree (every
worker) is sampled every 0.2 s; the peak of the summed RSS is reported. Prints a
Markdown table (ratio = Cairn req/s / MLflow req/s) and writes JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from peers import BENCH_DIR, MLFLOW_VENV, PROJECT_ROOT, ensure_mlflow

HOST = "127.0.0.1"
API = "/api/2.0/mlflow"
WORKLOADS = ("log-batch", "search", "latest", "alias")
MODEL = "bench-model"
SEARCH_RUNS = 10_000
LOG_RUNS = 32  # one run per client at most, so no two clients write one run's rows
CLIENT_PROCS = 4  # client threads are spread over this many processes (GIL)
START_TIMEOUT_S = 120.0
TARGET_RATIO = 5.0  # issue 11: >= 5x MLflow's throughput at 32 clients, p99 no worse


# --- servers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def server_env(workdir: Path) -> dict[str, str]:
    """No telemetry, no inherited tracking settings; bytecode written and reused."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", "MLFLOW_"))
           and k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
               XDG_CONFIG_HOME=str(workdir / "xdg-config"), HOME=str(workdir / "home"))
    return env


def server_command(tool: str, uri: str, artifacts: Path, port: int, workers: int,
                   mlflow_venv: Path) -> list[str]:
    common = ["--backend-store-uri", uri, "--artifacts-destination", str(artifacts),
              "--host", HOST, "--port", str(port), "--workers", str(workers)]
    if tool == "cairn":
        return [sys.executable, "-m", "cairn", "server", *common]
    return [str(mlflow_venv / "bin" / "mlflow"), "server", *common]


def process_tree(root: int) -> list[int]:
    """`root` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def status_kib(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemorySampler(threading.Thread):
    """The peak of the summed RSS of a process tree, sampled every 0.2 s."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root, self.peak_kib, self.processes = root, 0, 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            tree = process_tree(self.root)
            self.processes = max(self.processes, len(tree))
            self.peak_kib = max(self.peak_kib, sum(status_kib(p, "VmRSS") for p in tree))

    def hwm_kib(self) -> int:
        """The sum of each live process's own peak (VmHWM): an upper bound on the above."""
        return sum(status_kib(p, "VmHWM") for p in process_tree(self.root))


@dataclass
class Server:
    tool: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    sampler: MemorySampler

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@contextlib.contextmanager
def running(tool: str, uri: str, workdir: Path, workers: int,
            mlflow_venv: Path) -> Iterator[Server]:
    port = free_port()
    (workdir / "home").mkdir(parents=True, exist_ok=True)
    log = workdir / f"{tool}-server.log"
    command = server_command(tool, uri, workdir / f"{tool}-artifacts", port, workers,
                             mlflow_venv)
    env = server_env(workdir)
    if tool == "cairn":
        env["PYTHONPATH"] = str(PROJECT_ROOT / "src")
    with launched(tool, command, port, workdir, env, log, workers) as server:
        yield server


@contextlib.contextmanager
def launched(tool: str, command: list[str], port: int, cwd: Path, env: dict[str, str],
             log: Path, workers: int) -> Iterator[Server]:
    """`command` started in its own process group, its memory sampled, ready on every
    worker; stopped (SIGTERM, then SIGKILL) on the way out."""
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                   env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    server = Server(tool, port, process, log, MemorySampler(process.pid))
    server.sampler.start()
    try:
        wait_ready(server, workers)
        yield server
    finally:
        server.sampler.stopped.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def wait_ready(server: Server, workers: int) -> None:
    """Until /health answers on every worker (a few keep-alive-free probes in a row)."""
    deadline, answered = time.monotonic() + START_TIMEOUT_S, 0
    while answered < 4 * workers:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.tool} server exited {server.process.returncode}:\n"
                               f"{server.output()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.tool} server did not answer in {START_TIMEOUT_S:.0f} s:"
                               f"\n{server.output()}")
        try:
            conn = http.client.HTTPConnection(HOST, server.port, timeout=2)
            conn.request("GET", "/health")
            ok = conn.getresponse().status == 200
            conn.close()
        except OSError:
            ok = False
        answered = answered + 1 if ok else 0
        time.sleep(0.05 if ok else 0.2)


# --- a tiny JSON client (seeding and checks; untimed) -----------------------------------


class Client:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=120)

    def call(self, method: str, path: str, body: object = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        raw, status = self.send(method, path, data, headers)
        if status != 200:
            raise RuntimeError(f"{method} {path} -> {status}: {raw[:500]!r}")
        return json.loads(raw) if raw else {}

    def send(self, method: str, path: str, data: bytes | None,
             headers: dict[str, str]) -> tuple[bytes, int]:
        for attempt in (1, 2):  # the server may have closed an idle keep-alive connection
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                return response.read(), response.status
            except (ConnectionError, http.client.RemoteDisconnected):
                self.conn.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")
    def api(self, method: str, route: str, body: object = None) -> Any:
        return self.call(method, API + route, body)


def in_parallel(port: int, jobs: list[Callable[[Client], Any]], threads: int = 8) -> list[Any]:
    """Run each job with one of `threads` keep-alive clients; results in order."""
    results: list[Any] = [None] * len(jobs)
    cursor = iter(range(len(jobs)))
    lock, failures = threading.Lock(), list[Exception]()

    def worker() -> None:
        client = Client(port)
        while True:
            with lock:
                i = next(cursor, None)
            if i is None or failures:
                return
            try:
                results[i] = jobs[i](client)
            except Exception as exc:  # reported once, after the threads end
                failures.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if failures:
        raise failures[0]
    return results


def create_runs(port: int, experiment_id: str, count: int) -> list[dict[str, Any]]:
    def create(client: Client) -> dict[str, Any]:
        info: dict[str, Any] = client.api("POST", "/runs/create", {
            "experiment_id": experiment_id, "start_time": int(time.time() * 1000)})["run"]["info"]
        return info

    return in_parallel(port, [create] * count)


@dataclass
class Seeded:
    log_runs: list[str]
    search_experiment: str
    matching: int  # runs with m > 0.5
    seed_s: float


def seed(port: int, quick: bool, search: bool = True) -> Seeded:
    """The workloads' data; the 10,000 runs to search only when `search` is run (MLflow
    takes minutes to take them)."""
    started = time.monotonic()
    client = Client(port)
    log_exp = client.api("POST", "/experiments/create", {"name": "log-batch"})["experiment_id"]
    log_runs = [r["run_id"] for r in create_runs(port, log_exp, LOG_RUNS)]

    count = (SEARCH_RUNS // 10 if quick else SEARCH_RUNS) if search else 0
    search_exp = client.api("POST", "/experiments/create", {"name": "search"})["experiment_id"]
    runs = create_runs(port, search_exp, count)
    rng = random.Random(11)
    values = [rng.random() for _ in runs]

    def batch(run_id: str, m: float) -> Callable[[Client], Any]:
        body = {"run_id": run_id, "metrics": [
            {"key": "m", "value": m, "timestamp": 1, "step": 0},
            {"key": "loss", "value": 1 - m, "timestamp": 1, "step": 0},
            {"key": "acc", "value": m / 2, "timestamp": 1, "step": 0}],
            "params": [{"key": "lr", "value": "0.01"}, {"key": "depth", "value": "4"}],
            "tags": [{"key": "team", "value": "bench"}]}
        return lambda c: c.api("POST", "/runs/log-batch", body)

    in_parallel(port, [batch(r["run_id"], m) for r, m in zip(runs, values, strict=True)])

    # the registry: one run with a model directory, 10 versions, stages and an alias
    reg_exp = client.api("POST", "/experiments/create", {"name": "registry"})["experiment_id"]
    info = create_runs(port, reg_exp, 1)[0]
    tree = info["artifact_uri"].removeprefix("mlflow-artifacts:/")
    put = f"/api/2.0/mlflow-artifacts/artifacts/{tree}/model/MLmodel"
    raw, status = client.send("PUT", put, b"artifact_path: model\nflavors: {}\n", {})
    if status != 200:
        raise RuntimeError(f"PUT {put} -> {status}: {raw[:300]!r}")
    client.api("POST", "/registered-models/create", {"name": MODEL})
    for _ in range(10):
        client.api("POST", "/model-versions/create", {
            "name": MODEL, "source": info["artifact_uri"] + "/model", "run_id": info["run_id"]})
    for version, stage in (("3", "Staging"), ("7", "Production")):
        client.api("POST", "/model-versions/transition-stage", {
            "name": MODEL, "version": version, "stage": stage,
            "archive_existing_versions": False})
    client.api("POST", "/registered-models/alias",
               {"name": MODEL, "alias": "champion", "version": "8"})
    return Seeded(log_runs, search_exp, sum(v > 0.5 for v in values),
                  time.monotonic() - started)


def check(port: int, seeded: Seeded) -> None:
    """Untimed: each workload's answer is the right one on this server."""
    client = Client(port)
    found = client.api("POST", "/runs/search", search_body(seeded)).get("runs", [])
    ms = [next(m["value"] for m in r["data"]["metrics"] if m["key"] == "m") for r in found]
    assert len(found) == min(100, seeded.matching) and ms == sorted(ms, reverse=True), ms[:5]
    assert all(m > 0.5 for m in ms)
    latest = client.api("POST", "/registered-models/get-latest-versions", {"name": MODEL})
    by_stage = {v["current_stage"]: v["version"] for v in latest["model_versions"]}
    assert by_stage == {"None": "10", "Staging": "3", "Production": "7"}, by_stage
    alias = client.api("GET", f"/registered-models/alias?name={MODEL}&alias=champion")
    assert alias["model_version"]["version"] == "8", alias


# --- the timed workloads ---------------------------------------------------------------


def search_body(seeded: Seeded) -> dict[str, Any]:
    return {"experiment_ids": [seeded.search_experiment], "filter": "metrics.m > 0.5",
            "order_by": ["metrics.m DESC"], "max_results": 100}


Request = tuple[str, str, bytes | None]


def request_maker(workload: str, seeded: Seeded, base_step: int) -> Callable[[int, int], Request]:
    """(client index, request number) -> one request of `workload`."""
    if workload == "log-batch":
        def log_batch(client: int, n: int) -> Request:
            step = base_step + n  # unique per run: no duplicate metric or param rows
            body = {"run_id": seeded.log_runs[client % LOG_RUNS],
                    "metrics": [{"key": f"m{j}", "value": (n * 7 + j) % 101 / 100.0,
                                 "timestamp": 1_700_000_000_000 + step, "step": step}
                                for j in range(10)],
                    "params": [{"key": f"p{step}_{j}", "value": str(j)} for j in range(5)]}
            return "POST", API + "/runs/log-batch", json.dumps(body).encode()
        return log_batch
    if workload == "search":
        search = json.dumps(search_body(seeded)).encode()
        return lambda client, n: ("POST", API + "/runs/search", search)
    if workload == "latest":
        latest = json.dumps({"name": MODEL}).encode()
        return lambda client, n: ("POST", API + "/registered-models/get-latest-versions",
                                  latest)
    if workload == "alias":
        path = f"{API}/registered-models/alias?name={MODEL}&alias=champion"
        return lambda client, n: ("GET", path, None)
    raise ValueError(f"unknown workload {workload!r}; choose from {', '.join(WORKLOADS)}")


@dataclass
class ThreadResult:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    ended: float = 0.0


def client_thread(port: int, make: Callable[[int, int], Request], index: int, quota: int,
                  ready: Any, go: Any, deadline_s: float, out: ThreadResult) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=120)
    conn.connect()
    headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
    ready.wait()  # every client connected
    go.wait()
    deadline = time.monotonic() + deadline_s
    for n in range(quota):
        method, path, body = make(index, n)
        started = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers if body else {})
            response = conn.getresponse()
            raw = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            status, raw = 0, repr(exc).encode()
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=120)
        out.latencies.append(time.perf_counter() - started)
        if status != 200:
            out.errors += 1
            out.first_error = out.first_error or f"{status}: {raw[:300]!r}"
        if time.monotonic() > deadline:
            break
    out.ended = time.monotonic()
    conn.close()


def client_process(port: int, workload: str, seeded: Seeded, base_step: int,
                   indexes: list[int], quotas: list[int], ready: Any, go: Any,
                   deadline_s: float, results: Any) -> None:
    make = request_maker(workload, seeded, base_step)
    outs = [ThreadResult() for _ in indexes]
    threads = [threading.Thread(target=client_thread,
                                args=(port, make, i, q, ready, go, deadline_s, o))
               for i, q, o in zip(indexes, quotas, outs, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put([asdict(o) for o in outs])


@dataclass
class Cell:
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    capped: bool
    first_error: str = ""
    load_average: float = 0.0  # 1-minute load when the cell ended: other jobs show here
    # CPU seconds the server's whole process tree spent, per answered request: what a
    # shared machine's load changes least (the rate above waits on other jobs)
    server_cpu_ms: float = 0.0


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def cpu_seconds(pids: list[int]) -> float:
    """user + system CPU time of `pids` so far (those that still exist)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def run_cell(port: int, workload: str, seeded: Seeded, clients: int, total: int,
             cap_s: float, base_step: int, server_pid: int | None = None) -> Cell:
    """`total` requests from `clients` concurrent keep-alive clients, or until `cap_s`."""
    ctx = mp.get_context("fork")
    procs = min(clients, CLIENT_PROCS)
    ready, go, results = ctx.Barrier(clients + 1), ctx.Event(), ctx.Queue()
    quotas = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    workers = []
    for p in range(procs):
        mine = list(range(p, clients, procs))
        workers.append(ctx.Process(target=client_process, args=(
            port, workload, seeded, base_step, mine, [quotas[i] for i in mine], ready, go,
            cap_s, results)))
    for w in workers:
        w.start()
    ready.wait(60)
    tree = process_tree(server_pid) if server_pid else []
    cpu_before = cpu_seconds(tree)
    started = time.monotonic()
    go.set()
    outs: list[dict[str, Any]] = []
    for _ in workers:
        outs.extend(results.get(timeout=cap_s + 300))
    for w in workers:
        w.join(30)
    cpu = cpu_seconds(tree) - cpu_before
    ended = max(o["ended"] for o in outs)
    latencies = sorted(x for o in outs for x in o["latencies"])
    seconds = ended - started
    errors = sum(o["errors"] for o in outs)
    return Cell(len(latencies), errors, seconds, (len(latencies) - errors) / seconds,
                1000 * percentile(latencies, 0.50), 1000 * percentile(latencies, 0.99),
                len(latencies) < total,
                next((o["first_error"] for o in outs if o["first_error"]), ""),
                os.getloadavg()[0], 1000 * cpu / max(1, len(latencies) - errors))


# --- the run ---------------------------------------------------------------------------


@dataclass
class ServerRun:
    tool: str
    backend: str
    seed_s: float = 0.0
    cells: dict[str, dict[str, Any]] = field(default_factory=dict)  # "workload/clients"
    peak_rss_mib: float = 0.0
    hwm_sum_mib: float = 0.0
    processes: int = 0
    error: str = ""


def requests_for(workload: str, clients: int, quick: bool) -> int:
    base = {"log-batch": 3000, "search": 600, "latest": 4000, "alias": 4000}[workload]
    scaled = base if clients > 1 else base // 4
    return max(clients * 4, scaled // 10 if quick else scaled)


def bench_server(tool: str, backend: str, uri: str, args: argparse.Namespace,
                 workdir: Path) -> ServerRun:
    result = ServerRun(tool, backend)
    step = 0
    try:
        with running(tool, uri, workdir, args.workers, args.mlflow_venv) as server:
            seeded = seed(server.port, args.quick, "search" in args.only)
            result.seed_s = seeded.seed_s
            check(server.port, seeded)
            print(f"  {tool}/{backend}: seeded in {seeded.seed_s:.1f} s", flush=True)
            for workload in args.only:
                step += 1_000_000
                run_cell(server.port, workload, seeded, 8, 16 * 8, 10, step)  # warm-up
                for clients in args.clients:
                    step += 1_000_000
                    cell = run_cell(server.port, workload, seeded, clients,
                                    requests_for(workload, clients, args.quick), args.cap, step,
                                    server.process.pid)
                    result.cells[f"{workload}/{clients}"] = asdict(cell)
                    print(f"  {tool}/{backend} {workload:9} x{clients:<2}: {cell.rps:8.1f} req/s"
                          f"  p50 {cell.p50_ms:7.1f} ms  p99 {cell.p99_ms:7.1f} ms"
                          f"  server CPU {cell.server_cpu_ms:6.2f} ms/req"
                          f"  ({cell.requests} req, {cell.errors} errors"
                          f"{', capped' if cell.capped else ''}, load {cell.load_average:.1f})"
                          + (f"  first error {cell.first_error}" if cell.errors else ""),
                          flush=True)
            result.hwm_sum_mib = server.sampler.hwm_kib() / 1024
            result.peak_rss_mib = server.sampler.peak_kib / 1024
            result.processes = server.sampler.processes
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        print(f"  {tool}/{backend}: FAILED {result.error}", flush=True)
    return result


def backends(names: list[str], workdir: Path) -> Iterator[tuple[str, Callable[[str], str]]]:
    """(backend, a function giving each tool its own fresh database URI)."""
    for name in names:
        if name == "sqlite":
            yield name, lambda tool: f"sqlite:///{workdir / f'{tool}.db'}"
        elif name == "postgres":
            sys.path.insert(0, str(PROJECT_ROOT))
            from tests.pg_server import PgServer, find_bin

            if find_bin("initdb") is None or find_bin("pg_ctl") is None:
                print("PostgreSQL skipped: no initdb/pg_ctl in /usr/lib/postgresql/*/bin or "
                      "PATH (install Debian's postgresql)", flush=True)
                continue
            pg = PgServer.start()

            def fresh_database(tool: str, pg: PgServer = pg) -> str:
                return pg.url(pg.create_database())

            try:
                yield name, fresh_database
            finally:
                pg.stop()
        else:
            raise ValueError(f"unknown backend {name!r}: sqlite or postgres")


def compile_both(mlflow_venv: Path) -> None:
    """Bytecode for both, as an installed tool has (PYTHONDONTWRITEBYTECODE may be set)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(PROJECT_ROOT / "src")],
                   check=True)
    python = mlflow_venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True)
    subprocess.run([str(python), "-m", "compileall", "-q", site.stdout.strip()],
                   check=False, capture_output=True)


def ensure_psycopg(mlflow_venv: Path) -> None:
    """MLflow's SQLAlchemy (2.1) store speaks postgresql:// through psycopg 3."""
    python = str(mlflow_venv / "bin" / "python")
    if subprocess.run([python, "-c", "import psycopg"], capture_output=True).returncode:
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "psycopg[binary]"], check=True)


def versions(mlflow_venv: Path) -> dict[str, str]:
    def ask(python: str, code: str) -> str:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "src")})
        return done.stdout.strip() or done.stderr.strip()[-200:]

    probe = "import {0}; print({0}.__version__)"
    return {"mlflow": ask(str(mlflow_venv / "bin" / "python"), probe.format("mlflow")),
            "cairn": ask(sys.executable, probe.format("cairn")),
            "uvicorn (cairn)": ask(sys.executable, probe.format("uvicorn")),
            "python": platform.python_version(), "machine": f"{os.cpu_count()} cores, "
            f"{platform.machine()}, {platform.release()}"}


def markdown(runs: list[ServerRun], args: argparse.Namespace) -> str:
    by = {(r.tool, r.backend): r for r in runs}
    lines = ["| backend | workload | clients | MLflow req/s | Cairn req/s | Cairn/MLflow | "
             "MLflow p50 / p99 ms | Cairn p50 / p99 ms | server CPU ms/req MLflow / Cairn | "
             "target |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for backend in args.backends:
        mlflow, cairn = by.get(("mlflow", backend)), by.get(("cairn", backend))
        if mlflow is None or cairn is None:
            continue
        for workload in args.only:
            for clients in args.clients:
                key = f"{workload}/{clients}"
                m, c = mlflow.cells.get(key), cairn.cells.get(key)
                if m is None or c is None:
                    continue
                ratio = c["rps"] / m["rps"] if m["rps"] else float("nan")
                verdict = "—"
                if clients == max(args.clients):
                    ok = ratio >= TARGET_RATIO and c["p99_ms"] <= m["p99_ms"]
                    verdict = "pass" if ok else "**miss**"
                flag = " ⚠" if m["errors"] or c["errors"] else ""
                lines.append(
                    f"| {backend} | {workload} | {clients} | {m['rps']:.3g} | {c['rps']:.3g} | "
                    f"{ratio:.3g}x{flag} | {m['p50_ms']:.1f} / {m['p99_ms']:.1f} | "
                    f"{c['p50_ms']:.1f} / {c['p99_ms']:.1f} | "
                    f"{m.get('server_cpu_ms', 0):.2f} / {c.get('server_cpu_ms', 0):.2f} | "
                    f"{verdict} |")
    lines += ["", "| server | backend | seeding s | peak RSS of the tree, MiB | sum of VmHWM, "
              "MiB | processes |", "|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r.tool} | {r.backend} | {r.seed_s:.1f} | {r.peak_rss_mib:.0f} | "
                     f"{r.hwm_sum_mib:.0f} | {r.processes} |"
                     + (f" FAILED: {r.error}" if r.error else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1,000 runs to search and a tenth of the requests")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--tools", default="mlflow,cairn")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--only", default=",".join(WORKLOADS))
    parser.add_argument("--cap", type=float, default=20.0, help="seconds per cell at most")
    parser.add_argument("--mlflow-venv", type=Path, default=MLFLOW_VENV)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "server.json")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    args.backends = args.backends.split(",")
    args.clients = [int(c) for c in args.clients.split(",")]
    args.only = args.only.split(",")
    for workload in args.only:
        request_maker(workload, Seeded([], "", 0, 0.0), 0)  # an unknown name fails now
    tools = args.tools.split(",")

    if "mlflow" in tools:
        if args.mlflow_venv == MLFLOW_VENV:
            ensure_mlflow(quiet=True)
        if "postgres" in args.backends:
            ensure_psycopg(args.mlflow_venv)
    compile_both(args.mlflow_venv)
    info = versions(args.mlflow_venv)
    print(f"versions: {info}; --workers {args.workers}", flush=True)

    scratch = Path(tempfile.mkdtemp(prefix="cairn-bench-server-"))
    runs: list[ServerRun] = []

    def save() -> None:  # after each server, so an interrupted run keeps what it measured
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "versions": info,
            "workers": args.workers, "clients": args.clients, "quick": args.quick,
            "cap_s": args.cap, "client_processes": CLIENT_PROCS,
            "load_average": os.getloadavg(), "runs": [asdict(r) for r in runs]},
            indent=2) + "\n")

    try:
        for backend, fresh_uri in backends(args.backends, scratch):
            for tool in tools:
                workdir = scratch / f"{backend}-{tool}"
                workdir.mkdir()
                runs.append(bench_server(tool, backend, fresh_uri(tool), args, workdir))
                save()
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"scratch kept: {scratch}")
    print("\n" + markdown(runs, args))
    print(f"\nraw results: {args.out}")
    return 1 if any(r.error for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
