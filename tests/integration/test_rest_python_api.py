"""The Python API and the CLI through a Cairn server (`set_tracking_uri("http://…")`):
runs, artifacts and models land on the server — a second machine with an empty cache
loads them back — and the registry's rules are the server's: gates refuse, approvals
are needed, exactly as on a database."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CliRepo
from tests.server_process import LiveServer, running

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fresh_tracking")]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with running(f"sqlite:///{tmp_path / 'team.db'}", tmp_path) as live:
        yield live


@pytest.fixture
def laptop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine of its own: a home (and so an object cache) nobody else uses."""
    home = tmp_path / "laptop"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    return home


def train(server: LiveServer, f1: float) -> str:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import cairn
    import cairn.sklearn

    cairn.set_tracking_uri(server.url)
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    with cairn.start_run() as run:
        cairn.log_params({"C": 1.0})
        cairn.log_metrics({"f1": f1})
        cairn.sklearn.log_model(LogisticRegression().fit(x, y), "model")
    return str(run.info.run_id)


def test_a_model_logged_through_the_server_loads_on_another_machine(
        server: LiveServer, laptop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    import cairn
    from cairn.tracking import fluent

    run_id = train(server, 0.93)
    version = cairn.register_model(f"runs:/{run_id}/model", "fraud")
    assert version.version == 1
    assert list(server.artifacts.rglob("*")), "the objects were sent to the server"

    fluent._reset_for_tests()  # a second machine: a new home, an empty cache
    other = laptop.parent / "desktop"
    other.mkdir()
    monkeypatch.setenv("HOME", str(other))
    cairn.set_tracking_uri(server.url)
    model = cairn.pyfunc.load_model("models:/fraud/1")
    assert list(model.predict(np.array([[0.0], [3.0]]))) == [0, 1]
    run = cairn.get_run(run_id)
    assert run.data.metrics == {"f1": 0.93} and run.data.params == {"C": "1.0"}


def test_the_servers_gates_decide_a_promotion(server: LiveServer, laptop: Path) -> None:
    import cairn
    from cairn.errors import GateRefused
    from cairn.identity import current_user

    good, bad = train(server, 0.95), train(server, 0.5)
    client = cairn.Client()
    for run_id in (good, bad):
        cairn.register_model(f"runs:/{run_id}/model", "fraud")
    client.set_gate_policy("fraud", "Production:\n  - metric: f1\n    min: 0.9\n")
    with pytest.raises(GateRefused) as refused:
        client.transition_model_version_stage("fraud", 2, "Production")
    assert [v.passed for v in refused.value.verdicts] == [False]
    assert "f1" in str(refused.value)
    client.transition_model_version_stage("fraud", 1, "Production")
    assert client.get_model_version("fraud", 1).current_stage == "Production"
    refusals = [e for e in client.get_audit_log("fraud") if e.action == "gate_refused"]
    assert [(e.version, e.user_id) for e in refusals] == [(2, current_user())]


def test_the_cli_lists_runs_through_the_server(server: LiveServer, repo: CliRepo) -> None:
    run_id = train(server, 0.9)
    os.environ["CAIRN_TRACKING_URI"] = server.url
    try:
        shown = repo.cairn("runs", "list", "--json")
    finally:
        del os.environ["CAIRN_TRACKING_URI"]
    assert run_id in {r["info"]["run_id"] for r in json.loads(shown.stdout)}


def test_bytes_that_do_not_match_their_digest_are_refused(server: LiveServer) -> None:
    import httpx

    from cairn.objects.hashing import hash_bytes

    wrong = hash_bytes(b"what the name promises")
    answer = httpx.put(f"{server.url}/api/v1/objects/{wrong}", content=b"something else",
                       headers={"Content-Type": "application/octet-stream"})
    assert answer.status_code == 400 and "hash to" in answer.json()["message"]
    assert not list(server.artifacts.rglob(wrong[2:]))
