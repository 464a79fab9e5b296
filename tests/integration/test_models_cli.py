"""`cairn models …` end to end in a git + Cairn project: the seed's registry flow by CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest

import cairn
from cairn.objects.hashing import hash_bytes
from cairn.objects.tree import read_tree
from cairn.tracking import fluent
from cairn.tracking.backend import backend
from tests.conftest import CliRepo

pytestmark = pytest.mark.usefixtures("fresh_tracking")


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, target = load_iris(return_X_y=True, as_frame=True)
    return LogisticRegression(max_iter=300).fit(features, target), features


def train(repo: CliRepo, fitted: tuple[Any, Any], f1: float) -> str:
    model, features = fitted
    with cairn.start_run() as run:
        cairn.log_params({"lr": 0.01})
        cairn.log_metrics({"f1": f1})
        cairn.sklearn.log_model(model, "model", input_example=features[:5])
    return run.info.run_id


def out_json(repo: CliRepo, *args: str) -> Any:
    return json.loads(repo.cairn(*args, "--json").output)


def test_register_promote_alias_and_history(repo: CliRepo, fitted: tuple[Any, Any]) -> None:
    first, second = train(repo, fitted, 0.90), train(repo, fitted, 0.93)
    out = repo.cairn("models", "register", f"runs:/{first}/model", "--name", "fraud").output
    assert "Registered 'fraud' version 1" in out
    repo.cairn("models", "register", f"runs:/{second}/model", "-n", "fraud", "-t", "team=risk")
    repo.cairn("models", "promote", "fraud", "1", "--to", "production")
    out = repo.cairn("models", "promote", "fraud", "2", "--to", "Production",
                     "--archive-existing", "--reason", "better f1").output
    assert "'fraud' v2: None → Production; archived v1." in out
    versions = out_json(repo, "models", "versions", "fraud")
    assert [(v["version"], v["current_stage"]) for v in versions] == [(2, "Production"),
                                                                      (1, "Archived")]
    only_prod = out_json(repo, "models", "versions", "fraud", "--filter",
                         "current_stage = 'Production'")
    assert [v["version"] for v in only_prod] == [2]
    repo.cairn("models", "alias", "fraud", "champion", "2")
    assert out_json(repo, "models", "show", "fraud")["aliases"] == {"champion": 2}
    assert [v["version"] for v in out_json(repo, "models", "versions", "fraud", "--filter",
                                           "alias = 'champion'")] == [2]
    listed = out_json(repo, "models", "list")
    assert [m["name"] for m in listed] == ["fraud"]
    history = out_json(repo, "models", "history", "fraud")
    moves = [(e["version"], e["action"], e["to_value"]) for e in history
             if e["action"] == "transition"]
    assert moves[-1] == (2, "transition", "Production") and (1, "transition", "Archived") in moves
    holder = out_json(repo, "models", "history", "fraud", "--stage", "Production", "--at", "now")
    assert holder["versions"] == [2]
    assert "v2 held Production" in repo.cairn("models", "history", "fraud", "--stage",
                                              "production", "--at", "now").output
    repo.cairn("models", "alias", "fraud", "champion", "--delete")
    assert out_json(repo, "models", "show", "fraud")["aliases"] == {}


def test_lineage_joins_git_data_params_stage_run_and_registry(repo: CliRepo) -> None:
    weights = b"onnx weights " * 50
    repo.write("data/train.csv", "a,b\n1,2\n")
    repo.cairn("add", "data/train.csv")
    repo.write("models/model.onnx", weights)
    repo.cairn("add", "models/model.onnx")
    repo.write("params.yaml", "lr: 0.05\n")
    repo.write("cairn.lock", "schema: cairn-lock/1\nstages:\n  train:\n    cmd: python t.py\n"
               "    outs:\n    - path: models/model.onnx\n"
               f"      digest: {hash_bytes(weights)}\n      size: {len(weights)}\n")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "model v1")
    repo.git("tag", "model-v1")
    repo.cairn("models", "register", "models/model.onnx", "--name", "onnx-model")
    repo.cairn("models", "promote", "onnx-model", "1", "--to", "Staging", "--reason", "try")
    chain = out_json(repo, "models", "lineage", "models:/onnx-model/Staging")
    assert chain["git"]["commit"] == repo.git("rev-parse", "HEAD").strip()
    assert chain["git"]["tags"] == ["model-v1"] and chain["git"]["dirty"] is False
    assert chain["data"]["data/train.csv"] == hash_bytes(b"a,b\n1,2\n")
    assert chain["pipeline_stage"] == {"stage": "train", "out": "models/model.onnx"}
    assert chain["params_file"] == {"lr": 0.05}
    assert chain["model"]["version"] == 1 and chain["model"]["stage"] == "Staging"
    assert [t["to_value"] for t in chain["transitions"]] == ["None", "Staging"]
    (entry,) = read_tree(backend().odb, chain["digest"])
    assert (entry.name, entry.digest) == ("model.onnx", hash_bytes(weights))
    text = repo.cairn("models", "lineage", "models:/onnx-model/1").output
    assert "model-v1" in text and "train (out models/model.onnx)" in text


def test_gc_keeps_registered_models_and_live_runs(repo: CliRepo,
                                                  fitted: tuple[Any, Any]) -> None:
    model, features = fitted
    run_id = train(repo, fitted, 0.9)
    repo.cairn("models", "register", f"runs:/{run_id}/model", "--name", "fraud")
    repo.write("scratch.bin", b"unreferenced" * 10)
    repo.cairn("add", "scratch.bin")
    (repo.root / "scratch.bin.cairn").unlink()  # nothing names it any more
    repo.cairn("gc", "--force")
    odb = backend().odb
    assert not odb.exists(hash_bytes(b"unreferenced" * 10))
    fluent._reset_for_tests()
    loaded = cairn.load_model("models:/fraud/1")  # every object it needs survived
    assert list(loaded.predict(features[:3])) == list(model.predict(features[:3]))


def test_bad_input_is_one_clear_line(repo: CliRepo, fitted: tuple[Any, Any]) -> None:
    run_id = train(repo, fitted, 0.9)
    cases = [
        (("models", "show", "nope"), 1, "no registered model 'nope'"),
        (("models", "register", f"runs:/{run_id}/nope", "--name", "m"), 1,
         "has no artifact 'nope'; its artifacts: model"),
        (("models", "register", "runs:/", "--name", "m"), 2, "malformed model URI"),
        (("models", "lineage", "models:/m/Prod"), 2, "expected models:/NAME/VERSION"),
    ]
    for args, code, message in cases:
        result = repo.cairn(*args, ok=False)
        assert result.exit_code == code, (args, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    repo.cairn("models", "register", f"runs:/{run_id}/model", "--name", "m")
    bad_stage = repo.cairn("models", "promote", "m", "1", "--to", "Prod", ok=False)
    assert bad_stage.exit_code == 2 and "unknown stage 'Prod'" in bad_stage.stderr
    no_version = repo.cairn("models", "promote", "m", "4", "--to", "Staging", ok=False)
    assert "has no version 4; its versions: 1" in no_version.stderr


def test_a_model_missing_from_the_cache_is_fetched_from_the_remote(
        repo: CliRepo, fitted: tuple[Any, Any], tmp_path: Any) -> None:
    import shutil

    from cairn.objects.transfer import transfer
    from cairn.objects.tree import tree_oids
    from cairn.remotes.connect import open_remote

    model, features = fitted
    run_id = train(repo, fitted, 0.9)
    repo.cairn("models", "register", f"runs:/{run_id}/model", "--name", "fraud")
    (tmp_path / "storage").mkdir()
    repo.cairn("remote", "add", "-d", "origin", str(tmp_path / "storage"))
    b = backend()
    digest = cairn.Client().get_model_version("fraud", 1).digest
    remote = open_remote(b.repo.config)  # type: ignore[union-attr]
    transfer(b.odb, remote, list(tree_oids(b.odb, digest))).raise_for_failures("pushed")
    shutil.rmtree(b.odb.objects_dir)  # a fresh clone: the registry knows it, the cache not
    fluent._reset_for_tests()  # and a new process
    loaded = cairn.load_model("models:/fraud/1")
    assert list(loaded.predict(features[:3])) == list(model.predict(features[:3]))


def test_gc_cloud_keeps_a_registered_model_the_cache_lacks(repo: CliRepo,
                                                           fitted: tuple[Any, Any],
                                                           tmp_path: Any) -> None:
    """Another clone registered it (a shared database): gc still knows its manifests."""
    import shutil

    from cairn.objects.transfer import transfer
    from cairn.objects.tree import tree_oids
    from cairn.remotes.connect import open_remote

    model, features = fitted
    cairn.sklearn.save_model(model, tmp_path / "exported", input_example=features[:2])
    # Registered from a directory: only the version's manifest digest names its files.
    repo.cairn("models", "register", str(tmp_path / "exported"), "--name", "fraud")
    storage = tmp_path / "storage"
    storage.mkdir()
    repo.cairn("remote", "add", "-d", "origin", str(storage))
    b = backend()
    digest = cairn.Client().get_model_version("fraud", 1).digest
    model_oids = set(tree_oids(b.odb, digest))
    remote = open_remote(b.repo.config)  # type: ignore[union-attr]
    transfer(b.odb, remote, sorted(model_oids)).raise_for_failures("pushed")
    garbage = b.odb.add_bytes(b"nobody needs this")
    transfer(b.odb, remote, [garbage]).raise_for_failures("pushed")
    shutil.rmtree(b.odb.objects_dir)
    fluent._reset_for_tests()
    repo.cairn("gc", "--cloud", "--force")
    on_remote = set(remote.list_oids())
    assert model_oids <= on_remote and garbage not in on_remote


def two_versions(repo: CliRepo) -> None:
    repo.write("model.txt", "weights")
    repo.cairn("models", "register", "model.txt", "--name", "fraud")
    repo.cairn("models", "register", "model.txt", "--name", "fraud")


def test_history_names_the_alias_that_moved(repo: CliRepo) -> None:
    two_versions(repo)
    repo.cairn("models", "alias", "fraud", "champion", "1")
    repo.cairn("models", "alias", "fraud", "champion", "2")
    repo.cairn("models", "alias", "fraud", "champion", "--delete")
    rows = [line for line in repo.cairn("models", "history", "fraud").output.splitlines()
            if "alias" in line]
    assert len(rows) == 3 and all("champion" in row for row in rows)


def test_lineage_table_shows_params_yaml(repo: CliRepo) -> None:
    repo.write("params.yaml", "train:\n  learning_rate: 0.125\n")
    repo.git("add", "params.yaml")
    repo.git("commit", "-qm", "params")
    two_versions(repo)
    out = repo.cairn("models", "lineage", "models:/fraud/1").output
    assert "learning_rate" in out and "0.125" in out


def repro_a_model(repo: CliRepo) -> None:
    """A one-stage pipeline whose cached out `models/` cairn.lock records, committed."""
    repo.write("train.py", "import os\nos.makedirs('models', exist_ok=True)\n"
                           "open('models/clf.bin', 'w').write('weights v1')\n")
    repo.cairn("stage", "add", "-n", "train", "-d", "train.py", "-o", "models",
               "python", "train.py")
    repo.cairn("repro")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "train")


def test_a_pipeline_out_registers_by_the_digest_its_lock_records(repo: CliRepo) -> None:
    """A cairn.lock out is tracked data like a pointer file's: registering it names the
    recorded digest, even when the workspace copy is absent (a clone that has not pulled)
    or was edited since repro."""
    import shutil

    from cairn.project.lockfile import read_lock

    repro_a_model(repo)
    recorded = read_lock(repo.root, "cairn.lock").stages["train"].out("models")
    assert recorded is not None
    shutil.rmtree(repo.root / "models")
    version = cairn.register_model("models", "clf")
    assert version.digest == recorded.digest

    repo.cairn("checkout")
    (repo.root / "models" / "clf.bin").unlink()
    (repo.root / "models" / "clf.bin").write_text("edited by hand")
    assert cairn.register_model("models", "clf").digest == recorded.digest
    chain = out_json(repo, "models", "lineage", "models:/clf/2")
    assert chain["pipeline_stage"] == {"stage": "train", "out": "models"}
