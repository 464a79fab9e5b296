"""The seed article's MLflow snippets, run as written against Cairn.

Only the imports change: ``import mlflow`` becomes ``import cairn as mlflow``,
``from mlflow.tracking import MlflowClient`` becomes ``from cairn import MlflowClient`` and
``import mlflow.pyfunc`` becomes ``import cairn.pyfunc``. The article leaves ``model`` and
``new_data`` to the reader: here a LogisticRegression on iris (a pandas frame, the common
case) whose class labels are offset by the version number, so a prediction tells which
version served it. Each test runs in a fresh git + ``cairn init`` project, with the
default tracking location (the project's ``.cairn/cairn.db``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

import cairn as mlflow
from cairn import MlflowClient
from tests.conftest import CliRepo

NAME = "fraud-detector"


@pytest.fixture(autouse=True)
def project(repo: CliRepo) -> Iterator[CliRepo]:
    """The seed runs in a project; no active run or experiment leaks between tests."""
    from cairn.tracking import fluent

    fluent._reset_for_tests()
    yield repo
    while mlflow.active_run() is not None:
        mlflow.end_run()
    fluent._reset_for_tests()


def iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    features, target = load_iris(return_X_y=True, as_frame=True)
    return features, target


def iris_model(version: int) -> Any:
    """A classifier whose labels (10·version + species) say which version made them."""
    from sklearn.linear_model import LogisticRegression

    features, target = iris()
    return LogisticRegression(max_iter=1000).fit(features, target + 10 * version)


# --- the seed's snippets, verbatim apart from the import and the f1 parameter ----------


def seed_train_and_register(model: Any, f1: float = 0.91) -> Any:
    # During training
    with mlflow.start_run() as run:
        mlflow.log_params({"lr": 0.01, "epochs": 50})
        mlflow.sklearn.log_model(model, "model")
        mlflow.log_metrics({"accuracy": 0.94, "f1": f1})
    # Register the model
    result = mlflow.register_model(
        model_uri=f"runs:/{run.info.run_id}/model",
        name="fraud-detector"
    )
    print(f"Registered version: {result.version}")
    return run


def seed_promote_version_3() -> None:
    client = MlflowClient()
    # Move version 3 to production
    client.transition_model_version_stage(
        name="fraud-detector",
        version=3,
        stage="Production",
        archive_existing_versions=True  # auto-archive current prod
    )


def seed_load_production(new_data: Any) -> Any:
    import cairn.pyfunc  # noqa: F401  (the seed's `import mlflow.pyfunc`)
    model = mlflow.pyfunc.load_model("models:/fraud-detector/Production")
    predictions = model.predict(new_data)
    return predictions


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


def seed_cleanup() -> None:
    # Cleanup script: delete unregistered runs older than 90 days
    from datetime import datetime, timedelta

    import cairn as mlflow
    client = mlflow.MlflowClient()
    cutoff = datetime.now() - timedelta(days=90)
    for run in client.search_runs(experiment_ids=["1"]):
        run_date = datetime.fromtimestamp(run.info.start_time / 1000)
        if run_date < cutoff:
            # Check if any registered model points to this run
            versions = client.search_model_versions(f"run_id='{run.info.run_id}'")
            if not versions:
                client.delete_run(run.info.run_id)


# --- the tests ----------------------------------------------------------------------


def register_three_versions() -> list[str]:
    return [seed_train_and_register(iris_model(v)).info.run_id for v in (1, 2, 3)]


def stages() -> dict[int, str]:
    found = MlflowClient().search_model_versions(f"name='{NAME}'")
    return {int(v.version): v.current_stage for v in found}


def test_training_run_is_recorded_and_registered(capsys: pytest.CaptureFixture[str]) -> None:
    run = seed_train_and_register(iris_model(1))
    assert capsys.readouterr().out == "Registered version: 1\n"

    stored = MlflowClient().get_run(run.info.run_id)
    assert stored.info.status == "FINISHED"
    assert stored.data.params == {"lr": "0.01", "epochs": "50"}  # MLflow keeps params as text
    assert stored.data.metrics == {"accuracy": 0.94, "f1": 0.91}
    version = MlflowClient().get_model_version(NAME, 1)
    assert version.run_id == run.info.run_id

    seed_train_and_register(iris_model(2))
    assert capsys.readouterr().out == "Registered version: 2\n"


def test_promoting_version_3_archives_the_current_production_version() -> None:
    register_three_versions()
    client = MlflowClient()
    client.transition_model_version_stage(NAME, 1, "Production")
    client.transition_model_version_stage(NAME, 2, "Staging")

    seed_promote_version_3()

    production = client.get_latest_versions(NAME, stages=["Production"])
    assert [int(v.version) for v in production] == [3]
    # As in MLflow, only versions in the target stage are archived; Staging is left alone.
    assert stages() == {1: "Archived", 2: "Staging", 3: "Production"}


def test_production_uri_serves_whatever_is_production_now() -> None:
    register_three_versions()
    seed_promote_version_3()
    features, _ = iris()
    new_data = features.sample(12, random_state=0)

    predictions = seed_load_production(new_data)
    assert list(predictions) == list(iris_model(3).predict(new_data))
    assert set(predictions) <= {30, 31, 32}

    MlflowClient().transition_model_version_stage(NAME, 2, "Production",
                                                  archive_existing_versions=True)
    assert set(seed_load_production(new_data)) <= {20, 21, 22}


def candidate_run(f1: float) -> str:
    with mlflow.start_run() as run:
        mlflow.log_metrics({"f1": f1})
    return str(run.info.run_id)


def test_should_promote_requires_a_better_f1_than_production() -> None:
    seed_train_and_register(iris_model(1), f1=0.91)  # registered, not yet in Production
    assert should_promote(candidate_run(0.80), NAME) is True  # no production model yet

    MlflowClient().transition_model_version_stage(NAME, 1, "Production")
    assert should_promote(candidate_run(0.93), NAME) is True
    assert should_promote(candidate_run(0.912), NAME) is False  # within the 0.005 margin
    assert should_promote(candidate_run(0.85), NAME) is False


def old_run(client: Any, experiment_id: str, days: int) -> str:
    """A run that started ``days`` ago (MLflow's create_run takes a start time)."""
    started = datetime.now() - timedelta(days=days)
    run = client.create_run(experiment_id, start_time=int(started.timestamp() * 1000))
    return str(run.info.run_id)


def test_cleanup_deletes_only_old_unregistered_runs_of_experiment_1() -> None:
    # As in MLflow: "0" is the Default experiment, the first one created is "1".
    assert mlflow.set_experiment("fraud").experiment_id == "1"
    client = MlflowClient()

    old_registered = old_run(client, "1", days=120)
    with mlflow.start_run(run_id=old_registered):
        mlflow.sklearn.log_model(iris_model(1), "model")
    mlflow.register_model(f"runs:/{old_registered}/model", NAME)
    old_unregistered = old_run(client, "1", days=100)
    recent_unregistered = old_run(client, "1", days=30)
    recent_registered = seed_train_and_register(iris_model(2)).info.run_id
    old_elsewhere = old_run(client, "0", days=200)  # the Default experiment: not in scope

    seed_cleanup()

    def lifecycle(run_id: str) -> str:
        return str(client.get_run(run_id).info.lifecycle_stage)

    assert lifecycle(old_unregistered) == "deleted"
    for kept in (old_registered, recent_unregistered, recent_registered, old_elsewhere):
        assert lifecycle(kept) == "active"
    remaining = {r.info.run_id for r in client.search_runs(experiment_ids=["1"])}
    assert remaining == {old_registered, recent_unregistered, recent_registered}
