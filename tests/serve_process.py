"""A live `cairn serve` for tests: a subprocess on 127.0.0.1 and a free port, waited for
until it answers /health, stopped (and reaped) by the context manager; and models to
serve, in a project of their own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.server_process import HOST, START_TIMEOUT_S, free_port, until_stopped


@dataclass
class LiveScoring:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def serve_command(source: str, port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "cairn", "serve", source, "--host", HOST, "--port",
            str(port), *extra]


def clean_env(home: Path) -> dict[str, str]:
    """The environment a user's shell would give: no CAIRN_* of the test session."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    return env


@contextmanager
def serving(source: str, cwd: Path, *extra: str,
            env: dict[str, str] | None = None) -> Iterator[LiveScoring]:
    """`cairn serve SOURCE` on a free port of 127.0.0.1 until the block ends."""
    port = free_port()
    log = cwd.parent / f"serve-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(serve_command(source, port, *extra), cwd=cwd, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   env=env or clean_env(cwd.parent))
    live = LiveScoring(f"http://{HOST}:{port}", process, log)
    with until_stopped(process, live.url, "cairn serve", live.output):
        yield live


def refused(source: str, cwd: Path, *extra: str,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`cairn serve SOURCE` expected to exit at once (it must not start serving)."""
    return subprocess.run(serve_command(source, free_port(), *extra), cwd=cwd, text=True,
                          capture_output=True, timeout=START_TIMEOUT_S,
                          env=env or clean_env(cwd.parent))


IRIS_COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)",
                "petal width (cm)"]


@dataclass(frozen=True)
class ServedModels:
    """A project holding two registered iris classifiers: `iris` (named columns, trained
    on a DataFrame) and `iris-np` (one float64 tensor, trained on an array); `rows` and
    the predictions `load_model(...).predict` gives for them."""

    root: Path
    rows: list[list[float]]
    expected: dict[str, list[Any]]


@contextmanager
def models_in_a_home(factory: pytest.TempPathFactory, name: str) -> Iterator[ServedModels]:
    """`make_models` in a new project, under a HOME of its own (no user config leaks in)
    while the context lasts: a module-scoped fixture's whole module."""
    home = factory.mktemp(f"{name}-home")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HOME", str(home))
        env.setenv("XDG_CONFIG_HOME", str(home / ".config"))
        yield make_models(factory.mktemp(name) / "project")


def make_models(root: Path) -> ServedModels:
    """Train and register both models in a new project at `root` (run in a process whose
    working directory may change: it is restored)."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import cairn
    from cairn.tracking import fluent
    from tests.conftest import make_repo

    make_repo(root)
    old = Path.cwd()
    os.chdir(root)
    fluent._reset_for_tests()
    try:
        frame, target = load_iris(return_X_y=True, as_frame=True)
        rows = frame.iloc[::15].to_numpy().tolist()  # 10 rows of all three classes
        expected = {}
        for name, features in (("iris", frame), ("iris-np", frame.to_numpy())):
            with cairn.start_run() as run:
                model = LogisticRegression(max_iter=300).fit(features, target)
                cairn.sklearn.log_model(model, "model", input_example=features[:5])
            cairn.register_model(f"runs:/{run.info.run_id}/model", name)
            loaded = cairn.load_model(f"models:/{name}/1")
            given = pd.DataFrame(rows, columns=IRIS_COLUMNS) if name == "iris" \
                else np.asarray(rows)
            expected[name] = loaded.predict(given).tolist()
    finally:
        fluent._reset_for_tests()
        os.chdir(old)
    return ServedModels(root, rows, expected)


def make_package(models: ServedModels, batch_size: int) -> Path:
    """`models:/iris/1` built into a package under the project's dist/."""
    from cairn.packaging.build import build_package
    from cairn.tracking import fluent

    old = Path.cwd()
    os.chdir(models.root)
    fluent._reset_for_tests()
    try:
        return build_package("models:/iris/1", models.root / "dist",
                             batch_size=batch_size).path
    finally:
        fluent._reset_for_tests()
        os.chdir(old)
