"""`cairn server --auth`: every request authenticates (bearer token or HTTP basic, as the
mlflow client sends them), each endpoint allows exactly what the caller's level on that
experiment or model allows, tokens are stored hashed, and a revoked token is refused at
once by every server process on the database.

The permission table (ENDPOINTS) lists each endpoint with the level it needs; rows for
the /api/v1 routes are added the same way. One server (--default-permission NONE, so a
user without a grant sees nothing) serves the table; its users hold READ, EDIT and
MANAGE on the experiment and the model, or nothing.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cairn.commands import server_users
from tests.server_process import LiveServer, running

pytestmark = pytest.mark.usefixtures("fresh_tracking")

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
V1 = "/api/v1"
MPU = "/api/2.0/mlflow-artifacts/mpu"
LEVELS = ("NONE", "READ", "EDIT", "MANAGE")
_names = itertools.count()


def fresh(prefix: str) -> str:
    return f"{prefix}-{next(_names)}-{uuid.uuid4().hex[:6]}"


@dataclass
class World:
    """A live --auth server, its users' tokens (one per level, and an admin), and the
    experiment, run and model the levels are granted on."""

    server: LiveServer
    db: str
    tokens: dict[str, str]  # level (or "admin") → token
    experiment_id: str = ""
    run_id: str = ""
    model: str = ""

    def call(self, who: str | None, method: str, path: str, body: dict[str, Any] | None = None,
             content: bytes | None = None) -> httpx.Response:
        headers = {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}
        url = self.server.url + path
        if method == "GET":
            return httpx.get(url, params=body, headers=headers, timeout=30)
        if content is not None:
            return httpx.request(method, url, content=content, headers=headers, timeout=30)
        return httpx.request(method, url, json=body or {}, headers=headers, timeout=30)

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None,
              content: bytes | None = None) -> dict[str, Any]:
        answer = self.call("admin", method, path, body, content)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def experiment_name(self) -> str:
        found = self.admin("GET", f"{API}/experiments/get",
                           {"experiment_id": self.experiment_id})
        return str(found["experiment"]["name"])

    # -- resources made by the admin, granted to every level's user ---------------------

    def grant_all(self, *, experiment: str | None = None, model: str | None = None) -> None:
        for level in LEVELS[1:]:
            server_users.grant(level.lower(), level, experiment=experiment, model=model,
                               backend_store_uri=self.db)

    def new_experiment(self) -> str:
        experiment_id = str(self.admin("POST", f"{API}/experiments/create",
                                       {"name": fresh("exp")})["experiment_id"])
        self.grant_all(experiment=experiment_id)
        return experiment_id

    def new_run(self, experiment_id: str | None = None) -> str:
        run = self.admin("POST", f"{API}/runs/create",
                         {"experiment_id": experiment_id or self.experiment_id})
        run_id = str(run["run"]["info"]["run_id"])
        self.admin("PUT", f"{ARTIFACTS}/{experiment_id or self.experiment_id}/{run_id}/"
                          "artifacts/model/MLmodel", content=b"flavors: {}\n")
        self.admin("POST", f"{API}/runs/log-batch", {
            "run_id": run_id, "metrics": [{"key": "acc", "value": 0.9, "timestamp": 1,
                                           "step": 0}], "tags": [{"key": "t", "value": "1"}]})
        return run_id

    def new_model(self) -> str:
        name = fresh("model")
        self.admin("POST", f"{API}/registered-models/create", {"name": name})
        self.new_version(name)
        self.grant_all(model=name)
        return name

    def new_version(self, name: str | None = None) -> int:
        created = self.admin("POST", f"{API}/model-versions/create", {
            "name": name or self.model, "source": f"runs:/{self.run_id}/model",
            "run_id": self.run_id})
        return int(created["model_version"]["version"])


@dataclass(frozen=True)
class Endpoint:
    """One endpoint, the level it needs, and how to call it (`request(world)` gives
    method, path and body; it may make fresh resources, e.g. a run to delete)."""

    name: str
    needs: str
    request: Callable[[World], tuple[str, str, dict[str, Any] | None]]
    content: bytes | None = None


def _deleted_run(w: World) -> str:
    run_id = w.new_run()
    w.admin("POST", f"{API}/runs/delete", {"run_id": run_id})
    return run_id


def _deleted_experiment(w: World) -> str:
    experiment_id = w.new_experiment()
    w.admin("POST", f"{API}/experiments/delete", {"experiment_id": experiment_id})
    return experiment_id


def _uploaded(w: World) -> str:
    name = f"{fresh('f')}.txt"
    w.admin("PUT", f"{ARTIFACTS}/{w.experiment_id}/{w.run_id}/artifacts/{name}", None, b"x")
    return name


def _requested(w: World) -> int:
    """A request the EDIT user opened on a fresh version: MANAGE holders and admins may
    approve it (nobody approves their own)."""
    opened = w.call("EDIT", "POST", f"{V1}/requests", {
        "name": w.model, "version": w.new_version(), "target": "Staging"})
    assert opened.status_code == 200, opened.text
    return int(opened.json()["id"])


def _aliased(w: World) -> dict[str, Any]:
    alias = fresh("a")
    w.admin("POST", f"{API}/registered-models/alias", {"name": w.model, "alias": alias,
                                                         "version": "1"})
    return {"name": w.model, "alias": alias}


ENDPOINTS = [
    # experiments
    Endpoint("get experiment", "READ", lambda w: (
        "GET", f"{API}/experiments/get", {"experiment_id": w.experiment_id})),
    Endpoint("get experiment by name", "READ", lambda w: (
        "GET", f"{API}/experiments/get-by-name", {"experiment_name": w.experiment_name()})),
    Endpoint("tag experiment", "EDIT", lambda w: (
        "POST", f"{API}/experiments/set-experiment-tag",
        {"experiment_id": w.experiment_id, "key": "k", "value": "v"})),
    Endpoint("delete experiment", "MANAGE", lambda w: (
        "POST", f"{API}/experiments/delete", {"experiment_id": w.new_experiment()})),
    Endpoint("restore experiment", "MANAGE", lambda w: (
        "POST", f"{API}/experiments/restore", {"experiment_id": _deleted_experiment(w)})),
    # runs
    Endpoint("create run", "EDIT", lambda w: (
        "POST", f"{API}/runs/create", {"experiment_id": w.experiment_id})),
    Endpoint("get run", "READ", lambda w: ("GET", f"{API}/runs/get", {"run_id": w.run_id})),
    Endpoint("search runs", "READ", lambda w: (
        "POST", f"{API}/runs/search", {"experiment_ids": [w.experiment_id]})),
    Endpoint("metric history", "READ", lambda w: (
        "GET", f"{API}/metrics/get-history", {"run_id": w.run_id, "metric_key": "acc"})),
    Endpoint("log metric", "EDIT", lambda w: (
        "POST", f"{API}/runs/log-metric", {"run_id": w.run_id, "key": "loss", "value": 1.0,
                                           "timestamp": 2, "step": 1})),
    Endpoint("log param", "EDIT", lambda w: (
        "POST", f"{API}/runs/log-parameter", {"run_id": w.run_id, "key": fresh("p"),
                                              "value": "1"})),
    Endpoint("log batch", "EDIT", lambda w: (
        "POST", f"{API}/runs/log-batch", {"run_id": w.run_id, "tags": [
            {"key": "b", "value": "1"}]})),
    Endpoint("update run", "EDIT", lambda w: (
        "POST", f"{API}/runs/update", {"run_id": w.run_id, "run_name": fresh("r")})),
    Endpoint("delete run tag", "EDIT", lambda w: (
        "POST", f"{API}/runs/delete-tag", {"run_id": w.new_run(), "key": "t"})),
    Endpoint("delete run", "MANAGE", lambda w: (
        "POST", f"{API}/runs/delete", {"run_id": w.new_run()})),
    Endpoint("restore run", "MANAGE", lambda w: (
        "POST", f"{API}/runs/restore", {"run_id": _deleted_run(w)})),
    # MLflow 3's logged models
    Endpoint("log a model", "EDIT", lambda w: (
        "POST", f"{API}/logged-models", {"experiment_id": w.experiment_id,
                                         "source_run_id": w.run_id, "name": fresh("lm")})),
    Endpoint("search logged models", "READ", lambda w: (
        "POST", f"{API}/logged-models/search", {"experiment_ids": [w.experiment_id]})),
    # artifacts
    Endpoint("upload artifact", "EDIT", lambda w: (
        "PUT", f"{ARTIFACTS}/{w.experiment_id}/{w.run_id}/artifacts/{fresh('f')}.txt",
        None), content=b"hello"),
    Endpoint("delete artifact", "EDIT", lambda w: (
        "DELETE", f"{ARTIFACTS}/{w.experiment_id}/{w.run_id}/artifacts/{_uploaded(w)}", None)),
    Endpoint("download artifact", "READ", lambda w: (
        "GET", f"{ARTIFACTS}/{w.experiment_id}/{w.run_id}/artifacts/model/MLmodel", None)),
    Endpoint("list artifacts (proxy)", "READ", lambda w: (
        "GET", ARTIFACTS, {"path": f"{w.experiment_id}/{w.run_id}/artifacts"})),
    Endpoint("list artifacts", "READ", lambda w: (
        "GET", f"{API}/artifacts/list", {"run_id": w.run_id})),
    # registered models
    Endpoint("get model", "READ", lambda w: (
        "GET", f"{API}/registered-models/get", {"name": w.model})),
    Endpoint("latest versions", "READ", lambda w: (
        "POST", f"{API}/registered-models/get-latest-versions", {"name": w.model})),
    Endpoint("tag model", "EDIT", lambda w: (
        "POST", f"{API}/registered-models/set-tag", {"name": w.model, "key": "k",
                                                     "value": "v"})),
    Endpoint("describe model", "EDIT", lambda w: (
        "PATCH", f"{API}/registered-models/update", {"name": w.model, "description": "d"})),
    Endpoint("rename model", "EDIT", lambda w: (
        "POST", f"{API}/registered-models/rename", {"name": w.new_model(),
                                                    "new_name": fresh("renamed")})),
    Endpoint("delete model", "MANAGE", lambda w: (
        "DELETE", f"{API}/registered-models/delete", {"name": w.new_model()})),
    # versions
    Endpoint("get version", "READ", lambda w: (
        "GET", f"{API}/model-versions/get", {"name": w.model, "version": "1"})),
    Endpoint("download uri", "READ", lambda w: (
        "GET", f"{API}/model-versions/get-download-uri", {"name": w.model, "version": "1"})),
    Endpoint("register version", "EDIT", lambda w: (
        "POST", f"{API}/model-versions/create", {"name": w.model,
                                                  "source": f"runs:/{w.run_id}/model",
                                                  "run_id": w.run_id})),
    Endpoint("describe version", "EDIT", lambda w: (
        "PATCH", f"{API}/model-versions/update", {"name": w.model, "version": "1",
                                                  "description": "d"})),
    Endpoint("tag version", "EDIT", lambda w: (
        "POST", f"{API}/model-versions/set-tag", {"name": w.model, "version": "1",
                                                  "key": "k", "value": "v"})),
    Endpoint("delete version", "MANAGE", lambda w: (
        "DELETE", f"{API}/model-versions/delete", {"name": w.model,
                                                   "version": str(w.new_version())})),
    # transitions and aliases (through cairn.registry.promotion)
    Endpoint("transition stage", "EDIT", lambda w: (
        "POST", f"{API}/model-versions/transition-stage",
        {"name": w.model, "version": str(w.new_version()), "stage": "Staging"})),
    Endpoint("set alias", "EDIT", lambda w: (
        "POST", f"{API}/registered-models/alias", {"name": w.model, "alias": fresh("a"),
                                                   "version": "1"})),
    Endpoint("get by alias", "READ", lambda w: (
        "GET", f"{API}/registered-models/alias", _aliased(w))),
    Endpoint("delete alias", "EDIT", lambda w: (
        "DELETE", f"{API}/registered-models/alias", _aliased(w))),
    Endpoint("start a multipart upload", "EDIT", lambda w: (
        "POST", f"{MPU}/create/{w.experiment_id}/{w.run_id}/artifacts",
        {"path": "weights.bin", "num_parts": 2})),
    # Cairn's own API (/api/v1), which RestStore and the `cairn` CLI use
    Endpoint("v1 get run", "READ", lambda w: ("GET", f"{V1}/runs/{w.run_id}", None)),
    Endpoint("v1 search runs", "READ", lambda w: (
        "POST", f"{V1}/runs/search", {"experiment_ids": [w.experiment_id]})),
    Endpoint("v1 log batch", "EDIT", lambda w: (
        "POST", f"{V1}/runs/{w.run_id}/batch",
        {"metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": 0}]})),
    Endpoint("v1 delete run", "MANAGE", lambda w: ("DELETE", f"{V1}/runs/{w.new_run()}", None)),
    Endpoint("v1 delete runs", "MANAGE", lambda w: (
        "POST", f"{V1}/runs/delete", {"run_ids": [w.new_run(), w.new_run()]})),
    Endpoint("v1 get model", "READ", lambda w: ("GET", f"{V1}/models/{w.model}", None)),
    Endpoint("v1 audit log", "READ", lambda w: ("GET", f"{V1}/models/{w.model}/audit", None)),
    Endpoint("v1 lineage", "READ", lambda w: (
        "GET", f"{V1}/models/{w.model}/versions/1/lineage", None)),
    Endpoint("v1 record a package", "EDIT", lambda w: (
        "POST", f"{V1}/models/{w.model}/versions/1/packages",
        {"digest": "sha256:" + secrets.token_hex(32), "object_id": "0" * 64, "size": 1})),
    Endpoint("v1 list a model's packages", "READ", lambda w: (
        "GET", f"{V1}/models/{w.model}/packages", None)),
    Endpoint("v1 promote", "EDIT", lambda w: (
        "POST", f"{V1}/models/{w.model}/versions/{w.new_version()}/promote",
        {"stage": "Staging"})),
    Endpoint("v1 move alias", "EDIT", lambda w: (
        "PUT", f"{V1}/models/{w.model}/aliases/{fresh('a')}", {"version": 1})),
    Endpoint("v1 open request", "EDIT", lambda w: (
        "POST", f"{V1}/requests", {"name": w.model, "version": 1, "target": "Production"})),
    Endpoint("v1 approve", "MANAGE", lambda w: (
        "POST", f"{V1}/requests/{_requested(w)}/approve", {"comment": "ok"})),
    Endpoint("v1 set gates", "MANAGE", lambda w: (
        "PUT", f"{V1}/models/{w.new_model()}/gates",
        {"source": "Production:\n  - metric: f1\n    min: 0.5\n"})),
    Endpoint("v1 grant", "MANAGE", lambda w: (
        "PUT", f"{V1}/models/{w.new_model()}/permissions",
        {"user_id": "someone", "level": "READ"})),
]


def allows(level: str, needed: str) -> bool:
    return LEVELS.index(level) >= LEVELS.index(needed)


def add_user(db: str, name: str, *, admin: bool = False, password: str | None = None) -> str:
    return server_users.add_user(name, admin=admin, password=password,
                                 backend_store_uri=db)[1].secret


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("auth")
    db = f"sqlite:///{workdir / 'team.db'}"
    # The first admin, as an operator makes it: the real command on the server machine.
    made = subprocess.run([sys.executable, "-m", "cairn", "server", "users", "add", "admin",
                           "--admin", "--backend-store-uri", db, "--json"],
                          capture_output=True, text=True, cwd=workdir, check=True)
    import json

    tokens = {"admin": json.loads(made.stdout)["token"]}
    for level in LEVELS:
        tokens[level] = add_user(db, level.lower())
    with running(db, workdir, "--auth", "--default-permission", "NONE") as server:
        w = World(server, db, tokens)
        w.experiment_id = w.new_experiment()
        w.run_id = w.new_run()
        w.model = w.new_model()
        yield w


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_each_endpoint_allows_exactly_its_level(world: World, endpoint: Endpoint,
                                                level: str) -> None:
    method, path, body = endpoint.request(world)
    answer = world.call(level, method, path, body, endpoint.content)
    if allows(level, endpoint.needs):
        assert answer.status_code == 200, f"{level}: {answer.text}"
    else:
        assert answer.status_code == 403, f"{level}: {answer.text}"
        refusal = answer.json()
        assert refusal["error_code"] == "PERMISSION_DENIED"
        assert refusal["message"].startswith(f"{level.lower()} holds ")


def test_admins_may_do_everything_without_grants(world: World) -> None:
    experiment = world.admin("POST", f"{API}/experiments/create", {"name": fresh("solo")})
    for endpoint in ENDPOINTS:
        method, path, body = endpoint.request(world)
        answer = world.call("admin", method, path, body, endpoint.content)
        assert answer.status_code == 200, f"{endpoint.name}: {answer.text}"
    assert world.call("admin", "GET", f"{API}/experiments/get",
                      {"experiment_id": experiment["experiment_id"]}).status_code == 200


def test_searches_show_only_what_the_user_may_read(world: World) -> None:
    def names(who: str, path: str, key: str, body: dict[str, Any]) -> set[str]:
        answer = world.call(who, "GET" if "registered" in path or "versions" in path
                            else "POST", path, body)
        assert answer.status_code == 200, answer.text
        return {str(item.get("name", item.get("experiment_id")))
                for item in answer.json().get(key, [])}

    searches = [(f"{API}/experiments/search", "experiments", {"max_results": 1000}),
                (f"{API}/registered-models/search", "registered_models", {}),
                (f"{API}/model-versions/search", "model_versions", {})]
    for path, key, body in searches:
        assert names("NONE", path, key, body) == set(), path
        assert names("READ", path, key, body), path
    assert world.model in names("READ", f"{API}/registered-models/search",
                                "registered_models", {})
    refused = world.call("NONE", "POST", f"{API}/runs/search",
                         {"experiment_ids": [world.experiment_id]})
    assert refused.status_code == 403


def test_creators_manage_what_they_create(world: World) -> None:
    made = world.call("NONE", "POST", f"{API}/experiments/create", {"name": fresh("mine")})
    assert made.status_code == 200, made.text
    experiment_id = made.json()["experiment_id"]
    run = world.call("NONE", "POST", f"{API}/runs/create", {"experiment_id": experiment_id,
                                                           "user_id": "someone-else"})
    assert run.status_code == 200, run.text
    assert run.json()["run"]["info"]["user_id"] == "none"  # the token's user, not the body's
    model = fresh("mine")
    assert world.call("NONE", "POST", f"{API}/registered-models/create",
                      {"name": model}).status_code == 200
    assert world.call("NONE", "DELETE", f"{API}/registered-models/delete",
                      {"name": model}).status_code == 200
    assert world.call("READ", "GET", f"{API}/experiments/get",
                      {"experiment_id": experiment_id}).status_code == 403


def test_the_user_header_is_ignored_with_auth(world: World) -> None:
    answer = httpx.post(f"{world.server.url}{API}/runs/create",
                        json={"experiment_id": world.experiment_id},
                        headers={"Authorization": f"Bearer {world.tokens['EDIT']}",
                                 "X-Cairn-User": "admin"})
    assert answer.status_code == 200
    assert answer.json()["run"]["info"]["user_id"] == "edit"
    assert httpx.get(f"{world.server.url}{API}/experiments/get",
                     params={"experiment_id": world.experiment_id},
                     headers={"X-Cairn-User": "admin"}).status_code == 401


def _routes(scratch: Path) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, path parameters filled in."""
    import re

    from cairn.commands.server import ServerConfig
    from cairn.server.app import create_app

    app = create_app(ServerConfig(f"sqlite:///{scratch / 'routes.db'}", str(scratch / "a"),
                                  auth=True))
    found = []
    routes: list[Any] = []
    for route in app.routes:  # FastAPI 0.165 keeps included routers whole: expand them
        expand = getattr(route, "effective_route_contexts", None)
        routes += list(expand()) if expand is not None else [route]
    for route in routes:
        path = re.sub(r"\{[^}]+\}", "x", getattr(route, "path", ""))
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                found.append((method, path))
    assert len(found) > 50  # the MLflow routes and /api/v1, not an empty app
    return found


def test_no_endpoint_answers_without_credentials(world: World, tmp_path: Path) -> None:
    open_paths = {"/health", "/version"}
    for method, path in _routes(tmp_path):
        answer = httpx.request(method, world.server.url + path, timeout=30,
                               json=None if method == "GET" else {})
        if path in open_paths:
            assert answer.status_code == 200
            continue
        assert answer.status_code == 401, f"{method} {path}: {answer.status_code}"
        assert answer.json()["error_code"] == "UNAUTHENTICATED"
        assert "Bearer" in answer.headers["www-authenticate"]
    bad = httpx.get(f"{world.server.url}{API}/experiments/search",
                    headers={"Authorization": "Bearer cairn_not-a-token"})
    assert bad.status_code == 401 and "not valid" in bad.json()["message"]


def test_http_basic_with_a_token_or_a_password(world: World) -> None:
    password = "correct horse battery staple"
    token = add_user(world.db, "basil", password=password)
    url = f"{world.server.url}{API}/experiments/search"
    assert httpx.get(url, auth=("basil", token)).status_code == 200
    assert httpx.get(url, auth=("basil", password)).status_code == 200
    assert httpx.get(url, auth=("basil", password)).status_code == 200  # verified once
    assert httpx.get(url, auth=("basil", "wrong")).status_code == 401
    assert httpx.get(url, auth=("admin", token)).status_code == 401  # not admin's token
    server_users.remove_user("basil", backend_store_uri=world.db)
    assert httpx.get(url, auth=("basil", password)).status_code == 401
    assert httpx.get(url, auth=("basil", token)).status_code == 401


def test_tokens_and_passwords_are_not_stored_in_clear(world: World) -> None:
    password = "hunter2-but-longer"
    token = add_user(world.db, "cleartext-check", password=password)
    path = world.db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        rows = [repr(row) for table in ("users", "api_tokens")
                for row in conn.execute(f"SELECT * FROM {table}")]
        stored = conn.execute("SELECT token_hash FROM api_tokens WHERE user_name = ?",
                              ("cleartext-check",)).fetchall()
    assert stored == [(hashlib.sha256(token.encode()).hexdigest(),)]
    assert not any(token in row or password in row for row in rows)
    for file in Path(path).parent.glob(Path(path).name + "*"):  # the WAL too
        raw = file.read_bytes()
        assert token.encode() not in raw and password.encode() not in raw


def test_a_revoked_token_is_refused_at_once_by_every_server(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'team.db'}"
    token = add_user(db, "rita")
    with running(db, tmp_path, "--auth") as first, running(db, tmp_path, "--auth") as second:
        headers = {"Authorization": f"Bearer {token}"}
        for server in (first, second):  # --default-permission READ: she may read
            read = httpx.get(f"{server.url}{API}/experiments/get",
                             params={"experiment_id": "0"}, headers=headers)
            assert read.status_code == 200, read.text
            write = httpx.post(f"{server.url}{API}/runs/create", json={"experiment_id": "0"},
                               headers=headers)
            assert write.status_code == 403
        token_id = server_users.list_tokens(user="rita", backend_store_uri=db)[0].id
        server_users.revoke_token(token_id, backend_store_uri=db)
        for server in (first, second):
            answer = httpx.get(f"{server.url}{API}/experiments/get",
                               params={"experiment_id": "0"}, headers=headers)
            assert answer.status_code == 401, server.url
        listed = server_users.list_tokens(user="rita", backend_store_uri=db)[0]
        assert listed.revoked_time is not None and listed.last_used_time is not None


def test_auth_may_serve_beyond_this_machine_and_without_it_may_not() -> None:
    from cairn.commands.server import prepare
    from cairn.errors import UserError

    with pytest.raises(UserError, match="without authentication"):
        prepare(backend_store_uri="sqlite:///unused.db", host="0.0.0.0")
    assert prepare(backend_store_uri="sqlite:///unused.db", host="0.0.0.0", auth=True).auth


def test_the_commands_refuse_what_would_be_wrong(tmp_path: Path) -> None:
    from cairn.errors import ConflictError, NotFoundError, UserError

    db = f"sqlite:///{tmp_path / 'team.db'}"
    add_user(db, "ann")
    with pytest.raises(ConflictError, match="already exists"):
        add_user(db, "ann")
    with pytest.raises(UserError, match="not valid"):
        add_user(db, "a:b")
    with pytest.raises(NotFoundError, match="no user 'zed'"):
        server_users.grant("zed", "READ", experiment="Default", backend_store_uri=db)
    with pytest.raises(UserError, match="one experiment"):
        server_users.grant("ann", "READ", backend_store_uri=db)
    with pytest.raises(UserError, match="unknown permission"):
        server_users.grant("ann", "OWNER", experiment="Default", backend_store_uri=db)
    with pytest.raises(NotFoundError, match="no experiment"):
        server_users.grant("ann", "READ", experiment="nope", backend_store_uri=db)
    done = server_users.grant("*", "EDIT", experiment="Default", backend_store_uri=db)
    assert done.experiment == "0"


# -- gates, requests and approvals: the registry's rules, through the authorized store ----

def test_gates_requests_and_approvals_follow_the_model_levels(tmp_path: Path) -> None:
    """What the /api/v1 governance routes will do: the registry's promotion functions on
    the store a request gets (`ServerState.for_user`), acting as its user."""
    from cairn.commands.server import ServerConfig
    from cairn.errors import PermissionDenied
    from cairn.identity import acting_as
    from cairn.registry import promotion
    from cairn.server.mlflow_compat.common import backend
    from cairn.server.state import ServerState

    db = f"sqlite:///{tmp_path / 'team.db'}"
    for name in ("owner", "editor", "manager", "reader", "stranger"):
        add_user(db, name)
    add_user(db, "root", admin=True)
    state = ServerState.open(ServerConfig(db, str(tmp_path / "artifacts"), auth=True,
                                          default_permission="NONE"))
    assert state.auth is not None

    def as_(name: str) -> ServerState:
        user = state.auth.get_user(name) if state.auth else None
        assert user is not None
        return state.for_user(user)

    try:
        with acting_as("owner"):
            owner = as_("owner").store
            owner.create_registered_model("fraud")  # its creator manages it
            for _ in range(2):
                owner.create_model_version("fraud", "runs:/r/model", "ab" * 32)
            for name, level in (("editor", "EDIT"), ("manager", "MANAGE"),
                                ("reader", "READ")):
                owner.set_permission("fraud", name, level)
        policy = "Production:\n  - approval: required\n"
        with acting_as("editor"), pytest.raises(PermissionDenied, match="needs MANAGE"):
            promotion.set_policy(as_("editor").store, "fraud", policy, "gates.yaml")
        with acting_as("owner"):
            promotion.set_policy(as_("owner").store, "fraud", policy, "gates.yaml")
        with acting_as("reader"):
            assert as_("reader").store.get_gate_policy("fraud") is not None
            with pytest.raises(PermissionDenied, match="needs EDIT"):
                promotion.promote(backend(as_("reader")), "fraud", 1, "Production")
        with acting_as("stranger"), pytest.raises(PermissionDenied, match="no access"):
            as_("stranger").store.get_gate_policy("fraud")

        with acting_as("editor"):
            opened = promotion.promote(backend(as_("editor")), "fraud", 1, "Production")
        assert opened.request is not None and opened.request.requested_by == "editor"
        request_id = opened.request.id
        assert [r.id for r in as_("reader").store.search_promotion_requests()] == [request_id]
        assert as_("stranger").store.search_promotion_requests() == []

        with acting_as("editor"), pytest.raises(PermissionDenied, match="needs MANAGE"):
            promotion.approve(backend(as_("editor")), request_id)
        with acting_as("manager"):
            own = promotion.promote(backend(as_("manager")), "fraud", 2, "Staging",
                                    request=True)
            assert own.request is not None
            with pytest.raises(PermissionDenied, match="cannot approve it"):
                promotion.approve(backend(as_("manager")), own.request.id)
            decided = promotion.approve(backend(as_("manager")), request_id)
        assert decided.request.state == "approved" and decided.request.decided_by == "manager"
        assert as_("reader").store.get_model_version("fraud", 1).current_stage == "Production"
        with acting_as("root"):  # an admin, granted nothing, manages every model
            rejected = promotion.reject(backend(as_("root")), own.request.id, comment="no")
        assert rejected.request.state == "rejected"
        history = state.store.get_audit_log("fraud")
        assert {e.user_id for e in history} == {"owner", "editor", "manager", "root"}
    finally:
        state.close()


# -- the real mlflow client ------------------------------------------------------------------

CLIENT = """
import json, os
os.environ.update({credentials!r})
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

try:
    mlflow.set_experiment({experiment!r})
    with mlflow.start_run() as run:
        mlflow.log_metric("acc", 0.9)
        mlflow.log_param("p", "1")
        mlflow.log_text("hello", "notes.txt")
    client = MlflowClient()
    got = client.get_run(run.info.run_id)
    files = [f.path for f in client.list_artifacts(run.info.run_id)]
    print(json.dumps({{"user": got.info.user_id, "acc": got.data.metrics["acc"],
                      "files": files}}))
except MlflowException as e:
    print(json.dumps({{"refused": str(e)[:300]}}))
"""


@pytest.fixture(scope="module")
def mlflow_python_path() -> Path:
    from tests.compat.mlflow_client import PYTHON_ENV, mlflow_python

    try:
        return mlflow_python()
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot build the mlflow virtualenv benchmarks/.venv-mlflow ({exc}); "
                    f"run `python benchmarks/peers.py`, or set {PYTHON_ENV}")


@pytest.mark.slow
@pytest.mark.compat
@pytest.mark.parametrize("mode", ["token", "basic-token", "basic-password", "none"])
def test_the_mlflow_client_authenticates_as_it_does_with_mlflow(
        world: World, mlflow_python_path: Path, tmp_path: Path, mode: str) -> None:
    from tests.compat.mlflow_client import run_client

    password = "a long enough password"
    name = fresh("ml")
    token = add_user(world.db, name, password=password)
    credentials = {
        "token": {"MLFLOW_TRACKING_TOKEN": token},
        "basic-token": {"MLFLOW_TRACKING_USERNAME": name, "MLFLOW_TRACKING_PASSWORD": token},
        "basic-password": {"MLFLOW_TRACKING_USERNAME": name,
                           "MLFLOW_TRACKING_PASSWORD": password},
        "none": {},
    }[mode]
    found = run_client(mlflow_python_path, world.server.url, tmp_path,
                       CLIENT.format(credentials=credentials, experiment=fresh("client")),
                       world.server.output())
    if mode == "none":
        assert "401" in found["refused"] or "UNAUTHENTICATED" in found["refused"]
        return
    assert found == {"user": name, "acc": 0.9, "files": ["notes.txt"]}


@pytest.mark.postgres
def test_users_tokens_and_grants_on_postgresql(postgres_url: str) -> None:
    """The same tables by migration on PostgreSQL, and the commands on them."""
    from sqlalchemy import create_engine

    from cairn.store.open import open_store, sqlalchemy_url
    from cairn.store.sql import migrate
    from cairn.store.sql.auth import AuthStore

    open_store(postgres_url).close()
    engine = create_engine(sqlalchemy_url(postgres_url))
    try:
        assert migrate.differences(engine) == []
        token = add_user(postgres_url, "pat")
        auth = AuthStore(engine)
        user = auth.authenticate(token)
        assert user is not None and user.name == "pat"
        server_users.grant("pat", "EDIT", experiment="Default", backend_store_uri=postgres_url)
        assert auth.experiment_permissions("0") == {"pat": "EDIT"}
        server_users.revoke_token(server_users.list_tokens(
            user="pat", backend_store_uri=postgres_url)[0].id, backend_store_uri=postgres_url)
        assert auth.authenticate(token) is None
        server_users.remove_user("pat", backend_store_uri=postgres_url)
        assert auth.experiment_permissions("0") == {}
    finally:
        engine.dispose()


def test_the_cairn_client_authenticates_with_its_token(world: World,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """RestStore (what `cairn.set_tracking_uri("http://…")` opens) sends the token from
    CAIRN_TRACKING_TOKEN or MLFLOW_TRACKING_TOKEN, and gets the same Cairn errors."""
    from cairn.errors import PermissionDenied
    from cairn.store.rest import RestStore

    for variable in ("CAIRN_TRACKING_TOKEN", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv("CAIRN_TRACKING_TOKEN", raising=False)
        monkeypatch.setenv(variable, world.tokens["READ"])
        store = RestStore(world.server.url)
        try:
            assert store.get_run(world.run_id).info.run_id == world.run_id
            with pytest.raises(PermissionDenied, match="read holds READ"):
                store.delete_run(world.run_id)
        finally:
            store.close()
    monkeypatch.delenv("CAIRN_TRACKING_TOKEN", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    anonymous = RestStore(world.server.url)
    try:
        with pytest.raises(PermissionDenied):
            anonymous.get_run(world.run_id)
    finally:
        anonymous.close()


def test_multipart_parts_are_sent_as_the_user_who_started_the_upload(world: World) -> None:
    """The part URLs carry the starter's own credential: a part sent without it is
    refused, one sent with the headers `mpu/create` handed out is stored."""
    created = world.call("EDIT", "POST",
                         f"{MPU}/create/{world.experiment_id}/{world.run_id}/artifacts",
                         {"path": "w.bin", "num_parts": 1})
    assert created.status_code == 200, created.text
    credential = created.json()["credentials"][0]
    assert httpx.put(credential["url"], content=b"part").status_code == 401
    sent = httpx.put(credential["url"], content=b"part", headers=credential["headers"])
    assert sent.status_code == 200, sent.text


def test_only_admins_list_every_referenced_digest(world: World) -> None:
    """gc's and retention's questions name objects of every experiment and model, so it
    is an admin's, whatever a user holds on one of them."""
    asks = [("GET", f"{V1}/objects/referenced", None),
            ("POST", f"{V1}/objects/referenced", {"excluding_runs": [world.run_id]}),
            ("POST", f"{V1}/objects/of-runs", {"run_ids": [world.run_id]})]
    for method, path, body in asks:
        refused = world.call("MANAGE", method, path, body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error_code"] == "PERMISSION_DENIED"
    everything = world.call("admin", "GET", f"{V1}/objects/referenced")
    without = world.call("admin", "POST", f"{V1}/objects/referenced",
                         {"excluding_runs": [world.run_id]})
    assert everything.status_code == without.status_code == 200
    assert set(without.json()) <= set(everything.json())
