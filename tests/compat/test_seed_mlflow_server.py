"""The seed article's MLflow snippets, verbatim — `import mlflow` and all — run by the real
mlflow clients (3.x and 2.x) against a live `cairn server`.

The snippets are kept as the article writes them (its indentation restored) and executed
in one namespace by a client script; the harness around them supplies what the article
leaves to the reader: `model` (a LogisticRegression on iris whose labels are offset by
10 times the version, so a prediction tells which version served it), `new_data`, a candidate
run for `should_promote`, and old runs in experiment "1" for the cleanup script.
tests/compat/test_seed_mlflow_snippets.py runs the same snippets in-process with Cairn's
own `mlflow`-shaped API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compat.mlflow_client import run_client
from tests.server_process import LiveServer, running

pytestmark = [pytest.mark.slow, pytest.mark.compat, pytest.mark.usefixtures("fresh_tracking")]

TRAIN = '''\
import mlflow
from mlflow.tracking import MlflowClient
# During training
with mlflow.start_run() as run:
    mlflow.log_params({"lr": 0.01, "epochs": 50})
    mlflow.sklearn.log_model(model, "model")
    mlflow.log_metrics({"accuracy": 0.94, "f1": 0.91})
# Register the model
result = mlflow.register_model(
    model_uri=f"runs:/{run.info.run_id}/model",
    name="fraud-detector"
)
print(f"Registered version: {result.version}")
'''

PROMOTE = '''\
client = MlflowClient()
# Move version 3 to production
client.transition_model_version_stage(
    name="fraud-detector",
    version=3,
    stage="Production",
    archive_existing_versions=True  # auto-archive current prod
)
'''

LOAD = '''\
import mlflow.pyfunc
model = mlflow.pyfunc.load_model("models:/fraud-detector/Production")
predictions = model.predict(new_data)
'''

SHOULD_PROMOTE = '''\
def should_promote(candidate_run_id: str, model_name: str) -> bool:
    client = MlflowClient()
    candidate = client.get_run(candidate_run_id)
    candidate_f1 = float(candidate.data.metrics["f1"])
    # Get current production metrics
    prod_versions = client.get_latest_versions(model_name, stages=["Production"])
    if not prod_versions:
        return True  # No production model yet
    prod_run = client.get_run(prod_versions[0].run_id)
    prod_f1 = float(prod_run.data.metrics["f1"])
    # Require minimum improvement
    return candidate_f1 > prod_f1 + 0.005
'''

CLEANUP = '''\
# Cleanup script: delete unregistered runs older than 90 days
from datetime import datetime, timedelta
import mlflow
client = mlflow.MlflowClient()
cutoff = datetime.now() - timedelta(days=90)
for run in client.search_runs(experiment_ids=["1"]):
    run_date = datetime.fromtimestamp(run.info.start_time / 1000)
    if run_date < cutoff:
        # Check if any registered model points to this run
        versions = client.search_model_versions(f"run_id='{run.info.run_id}'")
        if not versions:
            client.delete_run(run.info.run_id)
'''

HARNESS = """
import contextlib, io, json
from datetime import datetime, timedelta
import mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

SNIPPETS = json.loads(open("snippets.json").read())  # written beside this script
features, target = load_iris(return_X_y=True, as_frame=True)
c = mlflow.MlflowClient()
out = {}


def iris_model(version):
    return LogisticRegression(max_iter=1000).fit(features, target + 10 * version)


def old_run(experiment_id, days):
    started = datetime.now() - timedelta(days=days)
    return c.create_run(experiment_id, start_time=int(started.timestamp() * 1000)).info.run_id


# As in MLflow: "0" is the Default experiment, the first one created is "1".
out["fraud_id"] = c.create_experiment("fraud")
ns = {}
printed = io.StringIO()
with contextlib.redirect_stdout(printed):
    for version in (1, 2, 3):
        ns["model"] = iris_model(version)
        exec(SNIPPETS["train"], ns)
out["printed"] = printed.getvalue()
out["train_run"] = ns["run"].info.run_id
out["train_run_data"] = [c.get_run(ns["run"].info.run_id).data.params,
                         c.get_run(ns["run"].info.run_id).data.metrics]
c.transition_model_version_stage("fraud-detector", 1, "Production")
exec(SNIPPETS["promote"], ns)
out["stages"] = {v.version: v.current_stage
                 for v in c.search_model_versions("name='fraud-detector'")}

new_data = features.sample(12, random_state=0)
ns["new_data"] = new_data
exec(SNIPPETS["load"], ns)
out["predictions"] = [int(p) for p in ns["predictions"]]
out["expected"] = [int(p) for p in iris_model(3).predict(new_data)]

exec(SNIPPETS["should_promote"], ns)
verdicts = {}
for f1 in (0.93, 0.912, 0.85):
    with mlflow.start_run() as candidate:
        mlflow.log_metrics({"f1": f1})
    verdicts[str(f1)] = ns["should_promote"](candidate.info.run_id, "fraud-detector")
out["should_promote"] = verdicts

runs = {"old_unregistered": old_run("1", 100), "recent_unregistered": old_run("1", 30),
        "old_registered": old_run("1", 120), "old_elsewhere": old_run("0", 200)}
with mlflow.start_run(run_id=runs["old_registered"]):
    mlflow.sklearn.log_model(iris_model(1), "model")
mlflow.register_model(f"runs:/{runs['old_registered']}/model", "fraud-detector")
exec(SNIPPETS["cleanup"], ns)
out["lifecycle"] = {k: c.get_run(r).info.lifecycle_stage for k, r in runs.items()}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, mlflow_major: int
           ) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp(f"seed-mlflow{mlflow_major}")
    with running(f"sqlite:///{workdir / 'team.db'}", workdir) as live:
        yield live


def test_the_seed_snippets_run_unchanged_against_a_cairn_server(
        client_python: Path, server: LiveServer, tmp_path: Path) -> None:
    snippets = {"train": TRAIN, "promote": PROMOTE, "load": LOAD,
                "should_promote": SHOULD_PROMOTE, "cleanup": CLEANUP}
    (tmp_path / "seed").mkdir()
    (tmp_path / "seed" / "snippets.json").write_text(json.dumps(snippets))
    out = run_client(client_python, server.url, tmp_path / "seed", HARNESS, server.output())

    assert out["fraud_id"] == "1"
    ours = [line for line in out["printed"].splitlines()  # the client prints run URLs too
            if not line.startswith(("\N{RUNNER}", "\N{TEST TUBE}"))]
    assert ours == ["Registered version: 1", "Registered version: 2", "Registered version: 3"]
    params, metrics = out["train_run_data"]
    assert params == {"lr": "0.01", "epochs": "50"}
    assert metrics == {"accuracy": 0.94, "f1": 0.91}
    # archive_existing_versions: the Production version 1 was archived, 2 left alone
    assert out["stages"] == {"1": "Archived", "2": "None", "3": "Production"}
    assert out["predictions"] == out["expected"]
    assert set(out["predictions"]) <= {30, 31, 32}  # version 3 served them
    assert out["should_promote"] == {"0.93": True, "0.912": False, "0.85": False}
    assert out["lifecycle"] == {"old_unregistered": "deleted", "recent_unregistered": "active",
                                "old_registered": "active", "old_elsewhere": "active"}

    import cairn

    mine = cairn.Client(server.backend_store_uri)
    assert mine.get_model_version("fraud-detector", 3).current_stage == "Production"
    assert mine.get_model_version("fraud-detector", 3).run_id == out["train_run"]
