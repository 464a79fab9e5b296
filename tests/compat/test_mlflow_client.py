"""The real mlflow clients — the current 3.x and the last 2.x release — against a live
`cairn server`: tracking, artifacts (multipart uploads too), `mlflow.sklearn.log_model`,
the registry (stages, aliases, gates) and loading models back — each result also checked
from Cairn's side, on the same database. The artifact routes refuse every path that would
leave the store.

One server for each client; each client script makes many checks (starting the client
costs seconds). The clients are those of benchmarks/.venv-mlflow and .venv-mlflow2
(tests/compat/mlflow_client.py). 2.x has no LoggedModel: it logs a model as run
artifacts, which its scripts name with `runs:/` URIs.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.compat.mlflow_client import run_client
from tests.s3_server import S3Bucket, s3_bucket, s3_server  # noqa: F401 - fixtures
from tests.server_process import HOST, LiveServer, running

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fresh_tracking")]


@pytest.fixture(scope="module")
def python(client_python: Path) -> Path:
    return client_python


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, mlflow_major: int) -> Path:
    return tmp_path_factory.mktemp(f"mlflow{mlflow_major}-compat")


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[LiveServer]:
    """A server for one client's scripts (they name the same experiments and models)."""
    with running(f"sqlite:///{workdir / 'team.db'}", workdir) as live:
        yield live


@pytest.fixture(scope="module")
def raw_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlflow-raw")


@pytest.fixture(scope="module")
def raw_server(raw_workdir: Path) -> Iterator[LiveServer]:
    """A server for the tests that speak HTTP themselves, with no client."""
    with running(f"sqlite:///{raw_workdir / 'team.db'}", raw_workdir) as live:
        yield live


def client(python: Path, server: LiveServer, workdir: Path, name: str,
           script: str, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    return run_client(python, server.url, workdir / name, script, server.output(), extra_env)


def cairn_client(server: LiveServer) -> Any:
    import cairn

    return cairn.Client(server.backend_store_uri)


TRACKING = """
import json, os, tempfile, mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

c = MlflowClient()
out = {}
exp_id = c.create_experiment("churn", tags={"team": "risk"})
try:
    c.create_experiment("churn")
except MlflowException as e:
    out["duplicate_experiment"] = e.error_code
out["by_name"] = c.get_experiment_by_name("churn").experiment_id
out["missing_by_name"] = c.get_experiment_by_name("no-such-experiment") is None
c.set_experiment_tag(exp_id, "stage", "dev")
out["experiment_tags"] = c.get_experiment(exp_id).tags
mlflow.set_experiment("churn")
ids = []
for i, lr in enumerate([0.1, 0.2, 0.3]):
    with mlflow.start_run(run_name=f"lr-{lr}") as run:
        mlflow.log_param("lr", lr)
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1) + i, step=step)
        mlflow.set_tag("kind", "sweep")
        mlflow.log_metrics({"acc": 0.7 + i / 10, "f1": 0.5})
        ids.append(run.info.run_id)
first = ids[0]
c.log_batch(first, metrics=[Metric("batch_m", 3.5, 1700000000000, 7)],
            params=[Param("batch_p", "x")], tags=[RunTag("batch_t", "y")])
c.set_tag(first, "temp", "1")
c.delete_tag(first, "temp")
try:
    c.log_param(first, "lr", 9.9)
except MlflowException as e:
    out["param_overwrite"] = e.error_code
d = tempfile.mkdtemp()
with open(os.path.join(d, "notes.txt"), "w") as f:
    f.write("hello from mlflow")
os.makedirs(os.path.join(d, "plots", "deep"))
with open(os.path.join(d, "plots", "deep", "p.csv"), "w") as f:
    f.write("a,b\\n1,2\\n")
c.log_artifact(first, os.path.join(d, "notes.txt"), artifact_path="docs")
c.log_artifacts(first, os.path.join(d, "plots"), artifact_path="plots")
run = c.get_run(first)
out["run"] = {"run_id": run.info.run_id,
              "status": run.info.status, "lifecycle": run.info.lifecycle_stage,
              "artifact_uri": run.info.artifact_uri, "experiment_id": run.info.experiment_id,
              "params": run.data.params, "metrics": run.data.metrics,
              "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}}
out["history"] = [(m.step, m.value) for m in c.get_metric_history(first, "loss")]
out["top"] = [(a.path, a.is_dir) for a in c.list_artifacts(first)]
out["plots"] = [(a.path, a.is_dir, a.file_size) for a in c.list_artifacts(first, "plots/deep")]
got = mlflow.artifacts.download_artifacts(run_id=first, artifact_path="docs/notes.txt",
                                          dst_path=tempfile.mkdtemp())
out["downloaded"] = open(got).read()
tree = mlflow.artifacts.download_artifacts(run_id=first, artifact_path="plots",
                                           dst_path=tempfile.mkdtemp())
out["downloaded_tree"] = open(os.path.join(tree, "deep", "p.csv")).read()
whole = mlflow.artifacts.download_artifacts(run_id=first, dst_path=tempfile.mkdtemp())
out["whole"] = sorted(os.path.relpath(os.path.join(r, f), whole)
                      for r, _, fs in os.walk(whole) for f in fs)
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
scratch = c.create_run("0").info.run_id  # in Default: the counts below are churn's
c.log_artifact(scratch, os.path.join(d, "notes.txt"), artifact_path="docs")
c.log_artifacts(scratch, os.path.join(d, "plots"), artifact_path="plots")
repo = get_artifact_repository(c.get_run(scratch).info.artifact_uri)
repo.delete_artifacts("plots/deep/p.csv")
out["after_file_delete"] = [(a.path, a.is_dir) for a in c.list_artifacts(scratch)]
repo.delete_artifacts("docs")
out["after_dir_delete"] = [(a.path, a.is_dir) for a in c.list_artifacts(scratch)]
out["frame"] = len(mlflow.search_runs([exp_id], filter_string="params.lr = '0.2'"))
found = c.search_runs([exp_id], "metrics.acc > 0.75 and params.lr != '0.1'",
                      order_by=["metrics.acc DESC"])
out["searched"] = [r.info.run_name for r in found]
page1 = c.search_runs([exp_id], max_results=2, order_by=["attributes.start_time ASC"])
page2 = c.search_runs([exp_id], max_results=2, order_by=["attributes.start_time ASC"],
                      page_token=page1.token)
out["pages"] = [[r.info.run_name for r in page1], [r.info.run_name for r in page2],
                page2.token]
c.delete_run(ids[2])
out["active"] = len(c.search_runs([exp_id]))
out["deleted"] = [r.info.run_id for r in c.search_runs([exp_id],
                                                       run_view_type=ViewType.DELETED_ONLY)]
out["deleted_id"] = ids[2]
c.restore_run(ids[2])
out["restored"] = c.get_run(ids[2]).info.lifecycle_stage
c.delete_experiment(exp_id)
out["after_delete"] = [e.name for e in c.search_experiments()]
out["deleted_experiments"] = [e.name for e in
                              c.search_experiments(view_type=ViewType.DELETED_ONLY)]
c.restore_experiment(exp_id)
out["after_restore"] = sorted(e.name for e in c.search_experiments())
c.create_experiment("churn-v2")
out["like"] = [e.name for e in c.search_experiments(filter_string="name LIKE 'churn%'",
                                                    order_by=["name DESC"])]
try:
    c.get_run("0" * 32)
except MlflowException as e:
    out["missing_run"] = e.error_code
out["ids"] = ids
print(json.dumps(out))
"""


def test_tracking_with_the_mlflow_client(python: Path, server: LiveServer,
                                         workdir: Path) -> None:
    out = client(python, server, workdir, "tracking", TRACKING)
    assert out["duplicate_experiment"] == "RESOURCE_ALREADY_EXISTS"
    assert out["missing_by_name"] is True
    assert out["experiment_tags"] == {"team": "risk", "stage": "dev"}
    run = out["run"]
    first = out["ids"][0]
    assert run["run_id"] == first
    raw = httpx.get(f"{server.url}/api/2.0/mlflow/runs/get", params={"run_id": first}).json()
    assert raw["run"]["info"]["run_uuid"] == first  # the older name, for older clients
    assert {"key": "batch_m", "value": 3.5, "timestamp": 1700000000000, "step": 7} in \
        raw["run"]["data"]["metrics"]
    assert run["status"] == "FINISHED" and run["lifecycle"] == "active"
    assert run["artifact_uri"] == f"mlflow-artifacts:/{run['experiment_id']}/{first}/artifacts"
    assert run["params"] == {"lr": "0.1", "batch_p": "x"}
    assert run["metrics"] == {"loss": pytest.approx(1 / 3), "acc": pytest.approx(0.7),
                              "f1": 0.5, "batch_m": 3.5}
    assert run["tags"] == {"kind": "sweep", "batch_t": "y"}
    assert out["param_overwrite"] == "INVALID_PARAMETER_VALUE"
    assert out["history"] == [[0, 1.0], [1, 0.5], [2, pytest.approx(1 / 3)]]
    assert out["top"] == [["docs", True], ["plots", True]]
    assert out["plots"] == [["plots/deep/p.csv", False, 8]]
    assert out["downloaded"] == "hello from mlflow"
    assert out["downloaded_tree"] == "a,b\n1,2\n"
    assert out["whole"] == ["docs/notes.txt", "plots/deep/p.csv"]
    assert out["after_file_delete"] == [["docs", True]]  # plots/ held only that file
    assert out["after_dir_delete"] == []
    assert out["frame"] == 1
    assert out["searched"] == ["lr-0.3", "lr-0.2"]
    assert out["pages"][0] == ["lr-0.1", "lr-0.2"]
    assert out["pages"][1] == ["lr-0.3"] and out["pages"][2] is None
    assert out["active"] == 2 and out["deleted"] == [out["deleted_id"]]
    assert out["restored"] == "active"
    assert "churn" not in out["after_delete"]
    assert out["deleted_experiments"] == ["churn"]
    assert out["after_restore"] == ["Default", "churn"]
    assert out["like"] == ["churn-v2", "churn"]
    assert out["missing_run"] == "RESOURCE_DOES_NOT_EXIST"

    # Cairn, on the same database, sees the same runs and the uploaded files by digest.
    cairn = cairn_client(server)
    mine = cairn.get_run(first)
    assert mine.data.params == {"lr": "0.1", "batch_p": "x"}
    assert mine.data.metrics["batch_m"] == 3.5
    assert [m.step for m in cairn.get_metric_history(first, "loss")] == [0, 1, 2]
    notes = next(a for a in cairn.store.list_artifacts(first) if a.path == "docs/notes.txt")
    assert notes.size == len("hello from mlflow") and not notes.is_dir
    from cairn.objects.hashing import hash_bytes

    assert notes.digest == hash_bytes(b"hello from mlflow")
    assert {a.path for a in cairn.store.list_artifacts(first, "plots") if a.is_dir} == \
        {"plots", "plots/deep"}  # directory manifests, as Cairn records logged directories
    experiment = cairn.get_experiment_by_name("churn")
    assert len(cairn.search_runs([experiment.experiment_id])) == 3


MULTIPART = """
import json, os, tempfile, mlflow
mlflow.set_experiment("multipart")
path = os.path.join(tempfile.mkdtemp(), "weights.bin")
with open(path, "wb") as f:
    f.write(bytes(range(256)) * (3 * 4096 + 100))  # 3.1 MB: four parts of 1 MiB
with mlflow.start_run() as run:
    mlflow.log_artifact(path, artifact_path="big")
got = mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                          artifact_path="big/weights.bin",
                                          dst_path=tempfile.mkdtemp())
print(json.dumps({"run_id": run.info.run_id,
                  "same": open(got, "rb").read() == open(path, "rb").read()}))
"""


def test_multipart_uploads_with_the_mlflow_client(python: Path, server: LiveServer,
                                                  workdir: Path) -> None:
    from cairn.objects.hashing import hash_bytes

    out = client(python, server, workdir, "multipart", MULTIPART, {
        "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "true",
        "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE": str(1 << 20),
        "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(1 << 20)})
    assert out["same"] is True
    log = server.output().splitlines()
    assert len([line for line in log if "PUT /api/2.0/mlflow-artifacts/mpu/upload/" in line]) == 4
    assert any("POST /api/2.0/mlflow-artifacts/mpu/complete/" in line for line in log)
    assert not any("big/weights.bin" in line and "PUT" in line for line in log)
    recorded = {a.path: a for a in cairn_client(server).store.list_artifacts(out["run_id"])}
    assert recorded["big/weights.bin"].digest == hash_bytes(bytes(range(256)) * (3 * 4096 + 100))
    assert not [p for d in server.artifacts.rglob("uploads") for p in d.iterdir()]


MODELS = """
import json, mlflow, numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

c = MlflowClient()
out = {}
mlflow.set_experiment("models")
X = np.array([[0.0], [1.0], [2.0], [3.0]])
y = np.array([0, 0, 1, 1])
V3 = int(mlflow.__version__.split(".")[0]) >= 3
runs, infos = [], []
for acc in (0.8, 0.9):
    with mlflow.start_run() as run:
        mlflow.log_metric("accuracy", acc)
        model = LogisticRegression().fit(X, y)
        # 3.x names a LoggedModel; 2.x logs the model as run artifacts under "model"
        infos.append(mlflow.sklearn.log_model(model, name="model") if V3 else
                     mlflow.sklearn.log_model(model, artifact_path="model"))
        runs.append(run.info.run_id)
out["runs"] = runs
out["model_uris"] = [i.model_uri for i in infos]
if V3:
    out["model_ids"] = [i.model_id for i in infos]
    out["logged"] = c.get_logged_model(infos[0].model_id).status.name
    out["found_logged"] = [m.model_id for m in c.search_logged_models(
        [mlflow.get_experiment_by_name("models").experiment_id], filter_string="name = 'model'")]
out["run_artifacts"] = sorted(a.path for a in c.list_artifacts(runs[0], "model"))
v1 = mlflow.register_model(f"runs:/{runs[0]}/model", "churn-model")
v2 = mlflow.register_model(infos[1].model_uri, "churn-model")
out["versions"] = [v1.version, v2.version, v2.run_id]
c.transition_model_version_stage("churn-model", v1.version, "Production")
c.transition_model_version_stage("churn-model", v2.version, "Production",
                                 archive_existing_versions=True)
out["stages"] = sorted((v.version, v.current_stage)
                       for v in c.search_model_versions("name = 'churn-model'"))
out["latest"] = [(v.version, v.current_stage)
                 for v in c.get_latest_versions("churn-model", stages=["Production"])]
c.set_registered_model_alias("churn-model", "champion", v2.version)
c.set_registered_model_alias("churn-model", "old", v1.version)
c.delete_registered_model_alias("churn-model", "old")
out["alias"] = c.get_model_version_by_alias("churn-model", "champion").version
out["aliases"] = c.get_registered_model("churn-model").aliases
out["models"] = [m.name for m in c.search_registered_models()]
c.set_model_version_tag("churn-model", v2.version, "validated", "yes")
c.update_model_version("churn-model", v2.version, description="the good one")
got = c.get_model_version("churn-model", v2.version)
out["v2"] = [got.tags, got.description]
out["by_version"] = mlflow.pyfunc.load_model("models:/churn-model/1").predict(X).tolist()
out["by_alias"] = mlflow.pyfunc.load_model("models:/churn-model@champion").predict(X).tolist()
out["by_stage"] = mlflow.pyfunc.load_model("models:/churn-model/Production").predict(X).tolist()
out["by_uri"] = mlflow.pyfunc.load_model(infos[0].model_uri).predict(X).tolist()
out["by_run"] = mlflow.pyfunc.load_model(f"runs:/{runs[0]}/model").predict(X).tolist()
v3 = mlflow.register_model(f"runs:/{runs[0]}/model", "scratch")
c.rename_registered_model("scratch", "scratch-2")
c.delete_model_version("scratch-2", v3.version)
out["after_version_delete"] = [v.version for v in
                               c.search_model_versions("name = 'scratch-2'")]
c.delete_registered_model("scratch-2")
try:
    c.get_registered_model("scratch-2")
except MlflowException as e:
    out["deleted_model"] = e.error_code
try:
    c.delete_run(runs[0])
except MlflowException as e:
    out["delete_registered_run"] = [e.error_code, e.message]
# The gated model: its policy (set from Cairn's side) wants accuracy >= 0.99.
gated = mlflow.register_model(f"runs:/{runs[1]}/model", "gated")
try:
    c.transition_model_version_stage("gated", gated.version, "Production")
except MlflowException as e:
    out["refused"] = [e.error_code, e.message]
try:
    c.transition_model_version_stage("gated", gated.version, "Staging")
except MlflowException as e:
    out["pending"] = [e.error_code, e.message]
out["gated_stage"] = c.get_model_version("gated", gated.version).current_stage
try:
    c.set_registered_model_alias("gated", "champion", gated.version)
except MlflowException as e:
    out["alias_refused"] = e.error_code
print(json.dumps(out))
"""

GATE_POLICY = """\
Staging:
  - approval: required
Production:
  - metric: accuracy
    min: 0.99
aliases:
  champion:
    rules:
      - metric: accuracy
        min: 0.99
"""


def test_models_registry_and_gates_with_the_mlflow_client(python: Path, server: LiveServer,
                                                          workdir: Path,
                                                          mlflow_major: int) -> None:
    cairn = cairn_client(server)
    cairn.create_registered_model("gated")
    cairn.set_gate_policy("gated", GATE_POLICY)

    out = client(python, server, workdir, "models", MODELS)
    runs = out["runs"]
    if mlflow_major >= 3:
        assert out["logged"] == "READY"
        assert sorted(out["found_logged"]) == sorted(out["model_ids"])
        assert out["model_uris"] == [f"models:/{i}" for i in out["model_ids"]]
    else:
        assert out["model_uris"] == [f"runs:/{r}/model" for r in runs]
    assert {"model/MLmodel", "model/requirements.txt"} <= set(out["run_artifacts"])
    assert out["versions"] == ["1", "2", runs[1]]
    assert out["stages"] == [["1", "Archived"], ["2", "Production"]]
    assert out["latest"] == [["2", "Production"]]
    assert out["alias"] == "2" and out["aliases"] == {"champion": "2"}
    assert set(out["models"]) == {"churn-model", "gated"}
    assert out["v2"] == [{"validated": "yes"}, "the good one"]
    assert out["by_version"] == out["by_alias"] == out["by_stage"] == out["by_uri"] == \
        out["by_run"] == [0, 0, 1, 1]
    assert out["after_version_delete"] == [] and out["deleted_model"] == \
        "RESOURCE_DOES_NOT_EXIST"
    code, message = out["delete_registered_run"]  # a registered version keeps its run
    assert code == "RESOURCE_CONFLICT" and runs[0] in message
    code, message = out["refused"]
    assert code == "INVALID_STATE"
    assert "gates refused model 'gated' version 1" in message
    assert "FAIL" in message and "accuracy" in message and "0.99" in message
    code, message = out["pending"]  # approvers wanted: a request opened, nothing moved
    assert code == "INVALID_STATE" and "need 1 approval(s): request" in message
    assert out["gated_stage"] == "None"
    assert out["alias_refused"] == "INVALID_STATE"

    # Cairn's side: the versions name the run's model directory digest; the audit log
    # records the transitions, the archive and the refusal.
    v1 = cairn.get_model_version("churn-model", 1)
    model_dir = next(a for a in cairn.store.list_artifacts(runs[0]) if a.path == "model")
    assert model_dir.is_dir and v1.digest == model_dir.digest and v1.run_id == runs[0]
    assert cairn.get_model_version("churn-model", 2).current_stage == "Production"
    assert cairn.get_model_version_by_alias("churn-model", "champion").version == 2
    actions = [e.action for e in cairn.get_audit_log("gated")]
    assert "gate_refused" in actions
    assert cairn.get_model_version("gated", 1).current_stage == "None"
    [request] = cairn.search_promotion_requests("gated")
    assert (request.version, request.target, request.state) == (1, "Staging", "open")
    download = httpx.get(f"{server.url}/api/2.0/mlflow/model-versions/get-download-uri",
                         params={"name": "churn-model", "version": "1"}).json()
    assert download == {"artifact_uri": f"mlflow-artifacts:/objects/{v1.digest}"}


# -- the artifact routes refuse paths that leave the store ----------------------------------

TRAVERSALS = [
    "../../outside.txt",
    "model/../../../outside.txt",
    "%2e%2e/%2e%2e/outside.txt",
    "%252e%252e/%252e%252e/outside.txt",
    "..%2f..%2foutside.txt",
    "..\\..\\outside.txt",
    "model\\..\\..\\outside.txt",
    "/etc/outside.txt",
]


def raw_request(server: LiveServer, method: str, path: str, body: bytes = b"") -> int:
    """A request with its path sent byte for byte (httpx would normalise the dots away)."""
    port = int(server.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_artifact_paths_that_leave_the_run_are_refused(raw_server: LiveServer,
                                                       raw_workdir: Path) -> None:
    server, workdir = raw_server, raw_workdir
    api = f"{server.url}/api/2.0/mlflow"
    experiment = httpx.post(f"{api}/experiments/create", json={"name": "attacks"}).json()
    run = httpx.post(f"{api}/runs/create", json={"experiment_id": experiment["experiment_id"]})
    run_id = run.json()["run"]["info"]["run_id"]
    root = f"/api/2.0/mlflow-artifacts/artifacts/{experiment['experiment_id']}/{run_id}/artifacts"
    before = sorted(p for p in workdir.rglob("*") if "server-artifacts" not in p.parts)
    for bad in TRAVERSALS:
        for prefix in (f"{root}/", "/api/2.0/mlflow-artifacts/artifacts/"):
            status = raw_request(server, "PUT", prefix + bad, b"pwned")
            assert 400 <= status < 500, (prefix + bad, status)
            assert 400 <= raw_request(server, "GET", prefix + bad) < 500, prefix + bad
        listed = httpx.get(f"{server.url}/api/2.0/mlflow-artifacts/artifacts",
                           params={"path": f"{experiment['experiment_id']}/{run_id}/"
                                           f"artifacts/{bad}"})
        assert listed.status_code == 400, bad
        assert listed.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    after = sorted(p for p in workdir.rglob("*") if "server-artifacts" not in p.parts)
    assert [p for p in after if p not in before and "outside" in p.name] == []
    assert not list(workdir.parent.glob("outside.txt"))
    assert httpx.get(f"{api}/artifacts/list", params={"run_id": run_id}).json()["files"] == []
    # and a good path still works, so the refusals above were about the paths
    assert raw_request(server, "PUT", f"{root}/ok/fine.txt", b"fine") == 200
    assert httpx.get(f"{server.url}{root}/ok/fine.txt").content == b"fine"
    unknown = httpx.post(f"{api}/no-such-route", json={})
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    wrong_method = httpx.get(f"{api}/runs/log-batch")  # a route, but not with this method
    assert wrong_method.status_code == 404
    assert wrong_method.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_uploads_are_streamed_by_digest_and_errors_are_mlflow_json(
        raw_server: LiveServer) -> None:
    server = raw_server
    from cairn.objects.hashing import hash_bytes

    api = f"{server.url}/api/2.0/mlflow"
    experiment = httpx.post(f"{api}/experiments/create", json={"name": "uploads"}).json()
    run = httpx.post(f"{api}/runs/create", json={"experiment_id": experiment["experiment_id"]})
    info = run.json()["run"]["info"]
    root = info["artifact_uri"].replace("mlflow-artifacts:/",
                                        f"{server.url}/api/2.0/mlflow-artifacts/artifacts/")
    blob = bytes(range(256)) * (5 * 4096 + 7)  # ~5 MB, not a multiple of any chunk size

    def body() -> Iterator[bytes]:  # chunked transfer: the server never sees a length
        for start in range(0, len(blob), 65536):
            yield blob[start:start + 65536]

    assert httpx.put(f"{root}/big/blob.bin", content=body()).status_code == 200
    assert httpx.get(f"{root}/big/blob.bin").content == blob
    listed = httpx.get(f"{server.url}/api/2.0/mlflow-artifacts/artifacts",
                       params={"path": f"{root.split('/artifacts/', 1)[1]}/big"}).json()
    assert listed == {"files": [{"path": "blob.bin", "is_dir": False, "file_size": len(blob)}]}
    recorded = {a.path: a for a in cairn_client(server).store.list_artifacts(info["run_id"])}
    assert recorded["big/blob.bin"].digest == hash_bytes(blob)
    assert recorded["big"].is_dir

    httpx.post(f"{api}/runs/log-metric", json={"run_id": info["run_id"], "key": "odd",
                                               "value": "NaN", "timestamp": 1, "step": 0})
    metrics = httpx.get(f"{api}/runs/get", params={"run_id": info["run_id"]}).json()
    assert metrics["run"]["data"]["metrics"] == [{"key": "odd", "value": "NaN",
                                                  "timestamp": 1, "step": 0}]

    missing = httpx.get(f"{api}/experiments/get", params={"experiment_id": "999"})
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    httpx.post(f"{api}/registered-models/create", json={"name": "twice"})
    again = httpx.post(f"{api}/registered-models/create", json={"name": "twice"})
    assert again.status_code == 400 and again.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    server_path = httpx.post(f"{api}/model-versions/create",
                             json={"name": "twice", "source": str(server.artifacts)})
    assert server_path.status_code == 400
    assert "a path on the server's disk is never read" in server_path.json()["message"]
    ajax = httpx.get(f"{server.url}/ajax-api/2.0/mlflow/experiments/get",
                     params={"experiment_id": "0"})
    assert ajax.json()["experiment"]["name"] == "Default"
    no_body = httpx.post(f"{api}/runs/log-metric", content=b"not json",
                         headers={"Content-Type": "application/json"})
    assert no_body.status_code == 400
    assert no_body.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.s3
def test_an_s3_artifact_destination_holds_the_uploads_by_digest(
        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from cairn.objects.hashing import hash_bytes

    bucket: S3Bucket = request.getfixturevalue("s3_bucket")

    with running(f"sqlite:///{tmp_path / 'team.db'}", tmp_path, "--artifacts-destination",
                 bucket.url(), env={"AWS_ENDPOINT_URL": bucket.endpoint}) as live:
        api = f"{live.url}/api/2.0/mlflow"
        experiment = httpx.post(f"{api}/experiments/create", json={"name": "s3"}).json()
        info = httpx.post(f"{api}/runs/create", json=experiment).json()["run"]["info"]
        root = info["artifact_uri"].replace("mlflow-artifacts:/",
                                            f"{live.url}/api/2.0/mlflow-artifacts/artifacts/")
        assert httpx.put(f"{root}/model/weights.bin", content=b"w" * 1000).status_code == 200
        assert httpx.get(f"{root}/model/weights.bin").content == b"w" * 1000
        # a multipart upload: its parts wait on the server's disk, the file lands in S3
        mpu = f"{live.url}/api/2.0/mlflow-artifacts/mpu"
        target = root.split("/mlflow-artifacts/artifacts/", 1)[1] + "/model"
        created = httpx.post(f"{mpu}/create/{target}",
                             json={"path": "/tmp/big.bin", "num_parts": 2}).json()
        parts = [{"part_number": c["part_number"],
                  "etag": httpx.put(c["url"], content=b"p" * 600).headers["ETag"]}
                 for c in created["credentials"]]
        done = httpx.post(f"{mpu}/complete/{target}", json={
            "path": "/tmp/big.bin", "upload_id": created["upload_id"], "parts": parts})
        assert done.status_code == 200, done.text
        assert httpx.get(f"{root}/model/big.bin").content == b"p" * 1200
        created = httpx.post(f"{api}/model-versions/create",
                             json={"name": "on-s3", "source": f"runs:/{info['run_id']}/model"})
        assert created.status_code == 200, created.text
        uri = httpx.get(f"{api}/model-versions/get-download-uri",
                        params={"name": "on-s3", "version": "1"}).json()["artifact_uri"]
        tree = uri.removeprefix("mlflow-artifacts:/")
        assert httpx.get(f"{live.url}/api/2.0/mlflow-artifacts/artifacts/{tree}/weights.bin"
                         ).content == b"w" * 1000
    for content in (b"w" * 1000, b"p" * 1200):
        digest = hash_bytes(content)
        listed = bucket.client().list_objects_v2(  # type: ignore[attr-defined]
            Bucket=bucket.name, Prefix=f"store/objects/{digest[:2]}/")
        assert [o["Key"] for o in listed.get("Contents", [])] == \
            [f"store/objects/{digest[:2]}/{digest[2:]}"]
