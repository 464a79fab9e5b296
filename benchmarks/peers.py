"""The tools under benchmark: DVC (in its own virtualenv) and Cairn (the project's console script).

DVC is never imported: it lives in ``benchmarks/.venv-dvc`` and is only ever run as a
subprocess, so its dependency pins cannot leak into Cairn's environment.

MLflow likewise lives in ``benchmarks/.venv-mlflow`` (with scikit-learn, for its models);
the tracking benchmark runs workload scripts with that interpreter. The last 2.x release
lives in ``benchmarks/.venv-mlflow2``, for the compatibility tests of older clients.

Run ``python benchmarks/peers.py`` to create the DVC virtualenv ahead of a benchmark,
``python benchmarks/peers.py mlflow`` for the MLflow one, ``python benchmarks/peers.py
mlflow2`` for the MLflow 2.x one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import threading
import venv
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
DVC_VENV = BENCH_DIR / ".venv-dvc"
DVC_PACKAGES = ("dvc", "dvc-s3")
MLFLOW_VENV = BENCH_DIR / ".venv-mlflow"
MLFLOW_PACKAGES = ("mlflow", "scikit-learn")
MLFLOW2_VENV = BENCH_DIR / ".venv-mlflow2"
MLFLOW2_PACKAGES = ("mlflow<3", "scikit-learn")  # pip picks the last 2.x release
_INSTALLED_MARKER = ".cairn-bench-installed"


def _venv_bin(venv_dir: Path, name: str) -> Path:
    return venv_dir / "bin" / name


@contextlib.contextmanager
def _building(venv_dir: Path) -> Iterator[None]:
    """One builder of `venv_dir` at a time, across threads and processes (a background
    prebuild and a test asking for the same virtualenv)."""
    venv_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(venv_dir.parent / f"{venv_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_dvc(venv_dir: Path = DVC_VENV, *, quiet: bool = False) -> Path:
    """Create (once) a virtualenv with DVC and its S3 plugin; return the ``dvc`` executable."""
    dvc = _venv_bin(venv_dir, "dvc")
    if (venv_dir / _INSTALLED_MARKER).exists() and dvc.exists():
        return dvc
    with _building(venv_dir):
        if (venv_dir / _INSTALLED_MARKER).exists() and dvc.exists():  # built while we waited
            return dvc
        if not _venv_bin(venv_dir, "python").exists():
            venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
        python = str(_venv_bin(venv_dir, "python"))
        pip = [python, "-m", "pip", "install", "--disable-pip-version-check"]
        if quiet:
            pip.append("--quiet")
        subprocess.run([*pip, *DVC_PACKAGES], check=True)
        subprocess.run([str(dvc), "--version"], check=True, capture_output=True)
        (venv_dir / _INSTALLED_MARKER).write_text(" ".join(DVC_PACKAGES) + "\n")
    return dvc


def ensure_mlflow(venv_dir: Path = MLFLOW_VENV, *, quiet: bool = False,
                  packages: tuple[str, ...] = MLFLOW_PACKAGES) -> Path:
    """Create (once) a virtualenv with MLflow and scikit-learn; return its ``python``."""
    python = _venv_bin(venv_dir, "python")
    if (venv_dir / _INSTALLED_MARKER).exists() and python.exists():
        return python
    with _building(venv_dir):
        if (venv_dir / _INSTALLED_MARKER).exists() and python.exists():
            return python
        if not python.exists():
            venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
        if quiet:
            pip.append("--quiet")
        subprocess.run([*pip, *packages], check=True)
        subprocess.run([str(python), "-c", "import mlflow, sklearn"], check=True,
                       capture_output=True)
        (venv_dir / _INSTALLED_MARKER).write_text(" ".join(packages) + "\n")
    return python


def ensure_mlflow2(venv_dir: Path = MLFLOW2_VENV, *, quiet: bool = False) -> Path:
    """Create (once) a virtualenv with the last MLflow 2.x release and scikit-learn;
    return its ``python``."""
    return ensure_mlflow(venv_dir, quiet=quiet, packages=MLFLOW2_PACKAGES)


def prebuild(names: tuple[str, ...] = ("dvc", "mlflow", "mlflow2")) -> list[threading.Thread]:
    """Build the missing peer virtualenvs side by side in background threads (pip waits
    on the network much of the time); whoever needs one later waits for its build, and a
    failed build is retried, and reported, by that caller."""
    builders: dict[str, Callable[[], Path]] = {
        "dvc": lambda: ensure_dvc(quiet=True), "mlflow": lambda: ensure_mlflow(quiet=True),
        "mlflow2": lambda: ensure_mlflow2(quiet=True)}

    def build(name: str) -> None:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            builders[name]()

    threads = [threading.Thread(target=build, args=(n,), daemon=True, name=f"prebuild-{n}")
               for n in names]
    for thread in threads:
        thread.start()
    return threads


def cairn_executable(override: str | None = None) -> Path:
    """The Cairn console script: ``override``, else $CAIRN_BENCH_EXE, else .venv/bin/cairn."""
    chosen = override or os.environ.get("CAIRN_BENCH_EXE")
    exe = Path(chosen) if chosen else _venv_bin(PROJECT_ROOT / ".venv", "cairn")
    if not exe.exists():
        raise FileNotFoundError(f"cairn executable not found at {exe}; install the project first")
    return exe.resolve()


@dataclass(frozen=True)
class S3Target:
    """An S3-compatible endpoint (the local moto server) and the credentials it accepts."""

    endpoint_url: str
    key: str = "testing"
    secret: str = "testing"


Command = list[str]


@dataclass(frozen=True)
class Peer(ABC):
    """One tool: how to set a repository up and the command line of each benchmarked verb."""

    exe: Path

    name = "peer"
    label = "Peer"
    cache_dir = ""  # relative to the repository root
    pointer_suffix = ""

    def run(self, *args: str) -> Command:
        return [str(self.exe), *args]

    @abstractmethod
    def init(self, site_dir: Path) -> list[Command]:
        """Commands that turn a fresh ``git init`` repository into one of this tool's projects."""

    @abstractmethod
    def add_remote(self, url: str, s3: S3Target | None) -> list[Command]:
        """Commands that configure ``url`` as the default remote (named ``bench``)."""

    def version(self) -> Command:
        return self.run("--version")

    def add(self, *paths: str) -> Command:
        return self.run("add", *paths)

    def status(self) -> Command:
        return self.run("status")

    def push(self, jobs: int) -> Command:
        return self.run("push", "-j", str(jobs))

    def pull(self, jobs: int) -> Command:
        return self.run("pull", "-j", str(jobs))

    def checkout(self) -> Command:
        return self.run("checkout")

    def repro(self) -> Command:
        return self.run("repro")

    def metrics_diff(self, old: str, new: str) -> Command:
        return self.run("metrics", "diff", old, new)


@dataclass(frozen=True)
class Dvc(Peer):
    name = "dvc"
    label = "DVC"
    cache_dir = ".dvc/cache"
    pointer_suffix = ".dvc"

    def init(self, site_dir: Path) -> list[Command]:
        # site_cache_dir holds DVC's stat cache and data index (default: /var/tmp/dvc);
        # keeping it beside the repository keeps runs independent and on the same disk.
        return [
            self.run("init", "--quiet"),
            self.run("config", "core.analytics", "false"),
            self.run("config", "core.autostage", "false"),
            self.run("config", "core.site_cache_dir", str(site_dir)),
        ]

    def add_remote(self, url: str, s3: S3Target | None) -> list[Command]:
        cmds = [self.run("remote", "add", "-d", "bench", url)]
        if s3 is not None:
            modify = ("remote", "modify", "--local", "bench")
            cmds += [
                self.run("remote", "modify", "bench", "endpointurl", s3.endpoint_url),
                self.run(*modify, "access_key_id", s3.key),
                self.run(*modify, "secret_access_key", s3.secret),
            ]
        return cmds


@dataclass(frozen=True)
class Cairn(Peer):
    name = "cairn"
    label = "Cairn"
    cache_dir = ".cairn/cache"
    pointer_suffix = ".cairn"

    def init(self, site_dir: Path) -> list[Command]:
        return [self.run("init", "--no-hooks")]

    def add_remote(self, url: str, s3: S3Target | None) -> list[Command]:
        cmds = [self.run("remote", "add", "-d", "bench", url)]
        if s3 is not None:
            cmds += [
                self.run("config", "remote.bench.endpoint_url", s3.endpoint_url),
                self.run("config", "remote.bench.key", s3.key),
                self.run("config", "remote.bench.secret", s3.secret),
            ]
        return cmds


def make_peers(names: list[str], cairn_override: str | None = None) -> list[Peer]:
    """Instantiate the requested peers in order, installing DVC on first use."""
    factories: dict[str, Callable[[], Peer]] = {
        "dvc": lambda: Dvc(ensure_dvc()),
        "cairn": lambda: Cairn(cairn_executable(cairn_override)),
    }
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise ValueError(f"unknown tool(s) {unknown}; choose from {sorted(factories)}")
    return [factories[n]() for n in names]


if __name__ == "__main__":
    _quiet = "-q" in sys.argv[1:]
    _args = sys.argv[1:]
    if "mlflow2" in _args:
        print(ensure_mlflow2(quiet=_quiet))
    elif "mlflow" in _args:
        print(ensure_mlflow(quiet=_quiet))
    else:
        print(ensure_dvc(quiet=_quiet))
