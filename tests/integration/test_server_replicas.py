"""Two `cairn server` processes on one PostgreSQL (and one artifact directory) serve one
registry: registrations and promotions sent through both at once, as a load balancer
would spread them, give versions 1..N with no gap or duplicate and one Production.

(A replica refusing a database at an old schema revision, naming `cairn db upgrade`, is
tests/integration/test_server.py::test_an_old_postgresql_schema_is_refused_with_the_upgrade_command.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pg_server import PgServer
from tests.server_process import LiveServer, running

pytestmark = pytest.mark.postgres

API = "/api/2.0/mlflow"
VERSIONS = 24  # registrations, spread over both replicas
THREADS = 8  # concurrent clients (bounded: the machine is shared)


@pytest.fixture
def replicas(pg_server: PgServer, pg_store_template: str,
             tmp_path: Path) -> Iterator[list[LiveServer]]:
    """Two servers on one migrated PostgreSQL database and one artifact directory."""
    url = pg_server.url(pg_server.create_database(pg_store_template))
    with ExitStack() as stack:
        yield [stack.enter_context(running(url, tmp_path)) for _ in range(2)]


def call(server: LiveServer, method: str, path: str, **fields: Any) -> dict[str, Any]:
    url = f"{server.url}{API}/{path}"
    answer = httpx.get(url, params=fields, timeout=60) if method == "GET" else \
        httpx.post(url, json=fields, timeout=60)
    assert answer.status_code == 200, (server.url, path, answer.status_code, answer.text)
    found: dict[str, Any] = answer.json()
    return found


def a_logged_model(server: LiveServer) -> str:
    """A run with a model directory, uploaded through one replica: its runs:/ source."""
    experiment = call(server, "POST", "experiments/create", name="replicas")["experiment_id"]
    run = call(server, "POST", "runs/create", experiment_id=experiment)["run"]["info"]["run_id"]
    root = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{experiment}/{run}/artifacts"
    for name, data in (("MLmodel", b"flavors: {}\n"), ("model.bin", b"weights")):
        assert httpx.put(f"{root}/model/{name}", content=data).status_code == 200
    return f"runs:/{run}/model"


def test_registrations_and_promotions_through_two_replicas_stay_consistent(
        replicas: list[LiveServer]) -> None:
    first, second = replicas
    source = a_logged_model(first)
    call(second, "POST", "registered-models/create", name="shared")

    def register(i: int) -> int:
        created = call(replicas[i % 2], "POST", "model-versions/create", name="shared",
                       source=source)
        return int(created["model_version"]["version"])

    with ThreadPoolExecutor(THREADS) as pool:
        numbers = list(pool.map(register, range(VERSIONS)))
    assert sorted(numbers) == list(range(1, VERSIONS + 1)), Counter(numbers).most_common(3)

    def promote(version: int) -> str:
        moved = call(replicas[version % 2], "POST", "model-versions/transition-stage",
                     name="shared", version=str(version), stage="Production",
                     archive_existing_versions=True)
        return str(moved["model_version"]["current_stage"])

    with ThreadPoolExecutor(THREADS) as pool:
        assert set(pool.map(promote, range(1, VERSIONS + 1))) == {"Production"}

    for server in replicas:  # both replicas read the same registry
        found = call(server, "GET", "model-versions/search", filter="name='shared'",
                     max_results=1000)["model_versions"]
        stages = Counter(v["current_stage"] for v in found)
        assert sorted(int(v["version"]) for v in found) == list(range(1, VERSIONS + 1))
        assert stages == {"Production": 1, "Archived": VERSIONS - 1}, stages
        latest = call(server, "POST", "registered-models/get-latest-versions", name="shared",
                      stages=["Production"])["model_versions"]
        assert [v["current_stage"] for v in latest] == ["Production"]
        assert latest[0]["version"] == next(v["version"] for v in found
                                            if v["current_stage"] == "Production")
