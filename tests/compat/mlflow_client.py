"""The real mlflow client, from its own virtualenv, run as a subprocess against a server.

The virtualenv is ``benchmarks/.venv-mlflow`` (built once by ``benchmarks/peers.py``,
with scikit-learn); CAIRN_MLFLOW_PYTHON names another interpreter that has mlflow (e.g.
the main checkout's venv from a worktree). mlflow is never imported into this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

PYTHON_ENV = "CAIRN_MLFLOW_PYTHON"
CLIENT_TIMEOUT_S = 240


def mlflow_python() -> Path:
    """The interpreter with mlflow: $CAIRN_MLFLOW_PYTHON, else the benchmarks venv (built
    on first use)."""
    override = os.environ.get(PYTHON_ENV)
    if override:
        return Path(override)
    from benchmarks.peers import ensure_mlflow

    return ensure_mlflow(quiet=True)


def run_client(python: Path, server_url: str, workdir: Path, script: str,
               server_log: str = "") -> dict[str, Any]:
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
               DO_NOT_TRACK="true")
    done = subprocess.run([str(python), str(path)], cwd=workdir, env=env, text=True,
                          capture_output=True, timeout=CLIENT_TIMEOUT_S, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise AssertionError(f"mlflow client script exited {done.returncode}:\n"
                             f"{done.stdout[-4000:]}\n{done.stderr[-6000:]}\n"
                             f"--- server log ---\n{server_log[-4000:]}")
    found: dict[str, Any] = json.loads(lines[-1])
    return found
