"""Peers for the compatibility tests: DVC and the mlflow clients (3.x and 2.x), each from
its own virtualenv, run as subprocesses.

The virtualenv is ``benchmarks/.venv-dvc`` (git-ignored), shared with the benchmarks and
built once by ``benchmarks/peers.py``; later sessions find it ready. Building it takes a
minute or two (pip install dvc), so the fixture is session-scoped.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from benchmarks.peers import DVC_VENV, ensure_dvc

from tests.compat.mlflow_client import python_or_skip


@dataclass(frozen=True)
class DvcTool:
    """DVC's console script; ``run`` starts it in a repository the way a user would."""

    exe: Path

    def run(self, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, DVC_NO_ANALYTICS="1")
        return subprocess.run([str(self.exe), *args], cwd=root, env=env, capture_output=True,
                              text=True, check=False)

    def init(self, root: Path) -> None:
        """``dvc init`` with no analytics, no auto-staging, and its caches inside ``root``."""
        site_cache = root.parent / f"{root.name}-dvc-site-cache"
        for args in (("init", "--quiet"), ("config", "core.analytics", "false"),
                     ("config", "core.autostage", "false"),
                     ("config", "core.site_cache_dir", str(site_cache))):
            check(self.run(root, *args), ["dvc", *args])


def check(proc: subprocess.CompletedProcess[str], cmd: Sequence[str]) -> str:
    """Output (stdout then stderr) of a command that must succeed."""
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise AssertionError(f"`{' '.join(cmd)}` exited {proc.returncode}:\n{output}")
    return output


@pytest.fixture(scope="session")
def dvc() -> DvcTool:
    """DVC from ``benchmarks/.venv-dvc``, building that virtualenv on first use."""
    try:
        return DvcTool(ensure_dvc(quiet=True))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot build the DVC virtualenv {DVC_VENV} (pip install dvc failed: "
                    f"{exc}); run `python benchmarks/peers.py` to see why")


@pytest.fixture(scope="module", params=[3, 2], ids=["mlflow3", "mlflow2"])
def mlflow_major(request: pytest.FixtureRequest) -> int:
    """Each mlflow client release line in turn: the current 3.x and the last 2.x."""
    major: int = request.param
    return major


@pytest.fixture(scope="module")
def client_python(mlflow_major: int) -> Path:
    """The interpreter of that client, from its own virtualenv (built on first use)."""
    return python_or_skip(mlflow_major)
