"""The real mlflow clients, each from its own virtualenv, run as subprocesses against a
server: the current 3.x release and the last 2.x release.

The virtualenvs are ``benchmarks/.venv-mlflow`` and ``benchmarks/.venv-mlflow2`` (built
once by ``benchmarks/peers.py``, with scikit-learn); CAIRN_MLFLOW_PYTHON and
CAIRN_MLFLOW2_PYTHON name other interpreters that have them (e.g. the main checkout's
venvs from a worktree). mlflow is never imported into this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

PYTHON_ENV = "CAIRN_MLFLOW_PYTHON"
PYTHON2_ENV = "CAIRN_MLFLOW2_PYTHON"
CLIENT_TIMEOUT_S = 240


def mlflow_python() -> Path:
    """The interpreter with mlflow 3.x: $CAIRN_MLFLOW_PYTHON, else the benchmarks venv
    (built on first use)."""
    override = os.environ.get(PYTHON_ENV)
    if override:
        return Path(override)
    from benchmarks.peers import ensure_mlflow

    return ensure_mlflow(quiet=True)


def mlflow2_python() -> Path:
    """The interpreter with mlflow 2.x: $CAIRN_MLFLOW2_PYTHON, else the benchmarks venv
    (built on first use)."""
    override = os.environ.get(PYTHON2_ENV)
    if override:
        return Path(override)
    from benchmarks.peers import ensure_mlflow2

    return ensure_mlflow2(quiet=True)


# major version: (finder, override variable, virtualenv, what pip installs, peers.py arg)
CLIENTS: dict[int, tuple[Callable[[], Path], str, str, str, str]] = {
    3: (mlflow_python, PYTHON_ENV, "benchmarks/.venv-mlflow", "mlflow", "mlflow"),
    2: (mlflow2_python, PYTHON2_ENV, "benchmarks/.venv-mlflow2", "'mlflow<3'", "mlflow2"),
}


def python_or_skip(major: int) -> Path:
    """The interpreter of the mlflow `major`.x client, or a pytest skip saying why its
    virtualenv could not be built."""
    import pytest

    find, env, venv, package, arg = CLIENTS[major]
    try:
        return find()
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot build the mlflow {major}.x virtualenv {venv} (pip install "
                    f"{package} scikit-learn failed: {exc}); run `python benchmarks/peers.py "
                    f"{arg}`, or set {env} to a python that has mlflow {major}.x")


def run_client(python: Path, server_url: str, workdir: Path, script: str,
               server_log: str = "", extra_env: dict[str, str] | None = None
               ) -> dict[str, Any]:
    """Run `script` (its last stdout line: a JSON object) with the mlflow client pointed
    at `server_url`; no retries, so a bad answer fails at once with its message."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "client_script.py"
    path.write_text(textwrap.dedent(script))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CAIRN_"))}
    env.pop("PYTHONPATH", None)
    env.update(MLFLOW_TRACKING_URI=server_url, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
               MLFLOW_HTTP_REQUEST_TIMEOUT="60", GIT_PYTHON_REFRESH="quiet",
               MLFLOW_ENABLE_ASYNC_LOGGING="false", MLFLOW_DISABLE_TELEMETRY="true",
               DO_NOT_TRACK="true", **(extra_env or {}))
    done = subprocess.run([str(python), str(path)], cwd=workdir, env=env, text=True,
                          capture_output=True, timeout=CLIENT_TIMEOUT_S, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise AssertionError(f"mlflow client script exited {done.returncode}:\n"
                             f"{done.stdout[-4000:]}\n{done.stderr[-6000:]}\n"
                             f"--- server log ---\n{server_log[-4000:]}")
    found: dict[str, Any] = json.loads(lines[-1])
    return found
