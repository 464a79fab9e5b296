"""End-to-end tour of Cairn on the embedded default (SQLite + local store, no server).

A two-stage pipeline (preprocess -> train, examples/iris) on a dataset that ships with
scikit-learn: repro runs what changed, a param edit reruns only training, two tags are
compared by their metrics; every training run is tracked and its model registered; a
gate policy refuses a promotion with its verdict table, a clean retrain passes and is
promoted through a request another user approves, then loaded by URI and asked to
predict; its lineage is printed and `cairn reproduce` rebuilds it to the same digest
(which lets it take the protected `champion` alias); then git push sends the data
through the pre-push hook, a fresh clone pulls every byte, and an older tagged model
comes back; checkout --verify re-hashes it all, and a pointer file naming a path outside
the workspace is refused unread; a retention policy deletes old exploratory runs and the
objects only they named (`cairn du` before and after), keeping what is registered, tagged
or live.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from demo_serve import serve_step

CAIRN = [sys.executable, "-m", "cairn"]
EXAMPLE = Path(__file__).resolve().parent / "iris"


def run(cmd: list[str], cwd: Path, show: bool = True, fails: bool = False) -> str:
    shown = "cairn " + shlex.join(cmd[3:]) if cmd[:3] == CAIRN else shlex.join(cmd)
    if show:
        print(f"\n$ {shown}")
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    out = (proc.stdout + proc.stderr).rstrip()
    if show and out:
        print("  " + out.replace("\n", "\n  "))
    if (proc.returncode != 0) != fails:
        sys.exit(f"demo failed: `{shown}` exited {proc.returncode}")
    return proc.stdout + proc.stderr if fails else proc.stdout


def cairn(cwd: Path, *args: str) -> str:
    return run([*CAIRN, *args], cwd)


def git(cwd: Path, *args: str, show: bool = True) -> str:
    return run(["git", *args], cwd, show)


def write_raw_data(project: Path) -> None:
    """data/raw/iris.csv from the dataset that ships with scikit-learn (no network)."""
    import numpy as np
    from sklearn.datasets import load_iris

    iris = load_iris()
    raw = project / "data" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    np.savetxt(raw / "iris.csv", np.column_stack([iris.data, iris.target]), delimiter=",",
               fmt="%g", header=",".join([*iris.feature_names, "target"]), comments="")


def copy_pipeline(project: Path) -> None:
    """The two-stage pipeline of examples/iris: preprocess -> train, params and metrics."""
    (project / "src").mkdir(exist_ok=True)
    for name in ("preprocess.py", "train.py"):
        shutil.copy(EXAMPLE / name, project / "src" / name)
    for name in ("cairn.yaml", "params.yaml"):
        shutil.copy(EXAMPLE / name, project / name)


def python(cwd: Path, code: str) -> str:
    print(f"\n>>> {code.strip().replace(chr(10), chr(10) + '... ')}")
    out = run([sys.executable, "-c", code], cwd, show=False)
    print("  " + out.strip().replace("\n", "\n  "))
    return out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def expect(output: str, *fragments: str) -> None:
    for fragment in fragments:
        if fragment not in output:
            sys.exit(f"demo failed: expected {fragment!r} in the output above")


GATES = """\
Production:
  - metric: f1
    min_improvement: 0.005       # the seed's should_promote
  - metric: accuracy
    min: 0.8
  - require: [signature, git_clean, lineage_complete, smoke_test]
  - approval: required           # a second person approves
aliases:
  champion:
    protected: true              # only a MANAGE holder moves it; its version stays
    rules:
      - require: reproducible    # and only to a version `cairn reproduce` rebuilt
"""


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="cairn-demo-"))
    env_git = {"GIT_AUTHOR_NAME": "Demo", "GIT_AUTHOR_EMAIL": "demo@cairn.invalid",
               "GIT_COMMITTER_NAME": "Demo", "GIT_COMMITTER_EMAIL": "demo@cairn.invalid"}
    os.environ.update({k: os.environ.get(k, v) for k, v in env_git.items()})
    # stages run `python …` like a user's activated virtualenv would: this interpreter
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    os.environ.setdefault("COLUMNS", "120")  # tables as a terminal shows them, not at 80
    project, origin, storage = base / "my-ml-project", base / "origin.git", base / "cairn-store"
    print(f"Working in {base}")

    git(base, "init", "-q", "--bare", "-b", "main", str(origin), show=False)
    git(base, "init", "-q", "-b", "main", str(project))
    git(project, "remote", "add", "origin", str(origin))
    cairn(project, "init")
    cairn(project, "remote", "add", "-d", "storage", str(storage))

    print("\n# the data is tracked by content; the pipeline is cairn.yaml (a dvc.yaml works too)")
    write_raw_data(project)
    copy_pipeline(project)
    cairn(project, "add", "data/raw")
    cairn(project, "dag")
    out = cairn(project, "repro")
    expect(out, "Running stage 'preprocess'", "Running stage 'train'")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "v1: baseline, learning_rate 0.01")
    git(project, "tag", "model-v1")
    v1 = sha(project / "models" / "classifier.pkl")

    print("\n# change one param: only the stage that reads it runs again")
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("learning_rate: 0.01", "learning_rate: 0.1"))
    cairn(project, "params", "diff")
    out = cairn(project, "repro")
    expect(out, "Stage 'preprocess' didn't change, skipping",
           "Running stage 'train': param train.learning_rate 0.01 → 0.1")
    git(project, "commit", "-qam", "v2: learning_rate 0.1")
    git(project, "tag", "model-v2")
    v2 = sha(project / "models" / "classifier.pkl")
    cairn(project, "metrics", "diff", "model-v1", "model-v2")
    cairn(project, "plots", "diff", "model-v1", "model-v2", "-o", str(base / "plots.html"))

    print("\n# every run was tracked and every model registered; promote with an audit trail")
    cairn(project, "runs", "list", "--experiment", "iris")
    cairn(project, "models", "versions", "iris-classifier")
    cairn(project, "models", "promote", "iris-classifier", "1", "--to", "Production")

    print("\n# promotion gates: the seed's 'f1 must beat Production by 0.005', and more,")
    print("# as a policy the registry enforces on every path (CLI, Client, later the server)")
    (project / "gates.yaml").write_text(GATES)
    cairn(project, "models", "gates", "set", "iris-classifier", "gates.yaml")
    refused = run([*CAIRN, "models", "promote", "iris-classifier", "2", "--to", "Production"],
                  project, fails=True)
    expect(refused, "Refused by the gates", "require git_clean", "FAIL",
           "gates refused model 'iris-classifier' version 2")
    print("\n# v2 was trained before its commit (a dirty workspace): retrain it from the")
    print("# clean commit, as CI would, and ask the seed's should_promote before promoting")
    out = cairn(project, "repro", "-f", "train")
    expect(out, "Running stage 'train'")
    verdict = python(project, """
import cairn, cairn.gates
run = cairn.search_runs(experiment_names=["iris"], order_by=["start_time DESC"],
                        output_format="list")[0]
verdict = cairn.gates.should_promote(run.info.run_id, "iris-classifier")
print("should_promote:", bool(verdict))
print("\\n".join(verdict.reasons))
""")
    expect(verdict, "should_promote: True", "f1 min_improvement")
    out = cairn(project, "models", "promote", "iris-classifier", "3", "--to", "Production",
                "--archive-existing", "--reason", "clean retrain of learning_rate 0.1")
    expect(out, "Opened request 1", "cairn models approve 1")
    cairn(project, "models", "permissions", "iris-classifier", "reviewer", "MANAGE")
    cairn(project, "models", "requests", "--state", "open")
    os.environ["CAIRN_USER"] = "reviewer"  # a second person approves: never the requester
    out = cairn(project, "models", "approve", "1", "--comment", "f1 and smoke test look good")
    del os.environ["CAIRN_USER"]
    expect(out, "Approved request 1: 'iris-classifier' v3 → Production")
    promoted = python(project, """
import cairn
versions = cairn.Client().search_model_versions("name='iris-classifier'")
print([(v.version, v.current_stage) for v in versions])
""")
    expect(promoted, "(3, 'Production')", "(1, 'Archived')", "(2, 'None')")
    predicted = python(project, """
import cairn, pandas as pd
model = cairn.load_model("models:/iris-classifier/Production")
data = pd.read_csv("data/processed/test.csv").drop(columns="target").head(3)
print("version", model.metadata.lineage["version"], "predicts", model.predict(data).tolist())
""")
    expect(predicted, "version 3 predicts")
    cairn(project, "models", "history", "iris-classifier")
    out = cairn(project, "models", "lineage", "models:/iris-classifier/Production")
    expect(out, "gates 7/7 pass")

    print("\n# the Production model is rebuilt from its lineage alone: its commit in a scratch")
    print("# worktree, its data by digest, its pipeline stage; the workspace is not touched")
    before = git(project, "status", "--porcelain", show=False)
    out = cairn(project, "reproduce", "models:/iris-classifier/Production")
    expect(out, "Reproduced: same digest")
    assert git(project, "status", "--porcelain", show=False) == before, "workspace changed"
    out = cairn(project, "models", "alias", "iris-classifier", "champion", "3")
    expect(out, "require reproducible", "match", "models:/iris-classifier@champion → version 3")
    packaged = package(base, project)
    serve_step(project, str(packaged), key=base / "keys" / "release.pub")

    print("\n# git push runs `cairn push` from the pre-push hook: nobody has to remember it")
    git(project, "push", "-q", "origin", "main", "--tags")
    cairn(project, "status", "--cloud")
    cairn(project, "du")

    clone = base / "fresh-clone"
    git(base, "clone", "-q", str(origin), str(clone))
    cairn(clone, "install-hooks")
    cairn(clone, "pull")
    assert sha(clone / "models" / "classifier.pkl") == v2, "pulled model differs"
    assert sha(clone / "data" / "raw" / "iris.csv") == sha(project / "data" / "raw" / "iris.csv")
    print(f"\nfresh clone has the exact model-v2 bytes (sha256 {v2})")
    old = base / "classifier-v1.pkl"
    cairn(clone, "get", ".", "models/classifier.pkl", "--rev", "model-v1", "-o", str(old))
    assert sha(old) == v1, "cairn get returned other bytes"

    print("\n# checking out an older tag brings back its model, through the post-checkout hook")
    git(clone, "checkout", "-q", "model-v1")
    assert sha(clone / "models" / "classifier.pkl") == v1, "model-v1 bytes differ"
    print(f"models/classifier.pkl is model-v1 again (sha256 {v1})")
    cairn(clone, "status")
    cairn(clone, "fsck")
    cairn(clone, "checkout", "--verify")  # re-hash everything, trusting no stat cache

    print("\n# a repository someone else wrote is untrusted: a pointer file naming a path")
    print("# outside the workspace (or in .git/, or through a symlink) is refused unread")
    digest = (clone / "cairn.lock").read_text().split("digest: ")[1][:64]
    evil = clone / "evil.cairn"
    evil.write_text(f"outs:\n- path: ../../outside.pkl\n  hash: blake3\n  digest: {digest}\n"
                    "  size: 1\n")
    refused = run([*CAIRN, "checkout"], clone, fails=True)
    expect(refused, "evil.cairn:2", "climbs out of the workspace")
    assert not (base / "outside.pkl").exists() and not (base.parent / "outside.pkl").exists()
    evil.unlink()

    print("\n# what is live has one answer: gc, push and the hooks ask the same providers;")
    print("# from Python (cairn.commands, what the CLI calls) gc keeps exactly what the CLI keeps")
    cli_plan = cairn(project, "gc", "--all-tags", "--dry-run", "--json")
    from_python = python(project, """
from cairn.commands import data
plan = data.gc(all_tags=True, dry_run=True)
print("referenced", plan.referenced, "would remove", len(plan.removed))
""")
    expect(from_python, f"referenced {json.loads(cli_plan)['referenced']} would remove 0")
    retention(project)
    team_server(base)
    print(f"\nDemo finished; everything is left in {base} to explore.")


def retention(project: Path) -> None:
    """The seed's cleanup script as one safe command: old runs go with the objects only
    they named; registered and tagged runs, and everything live, stay."""
    print("\n# exploratory runs pile up; a retention policy deletes the old ones and the")
    print("# objects only they referenced (registered runs and runs tagged `keep` stay)")
    python(project, """
import os, pathlib, cairn
cairn.set_experiment("exploration")
for i in range(3):
    with cairn.start_run(run_name=f"sweep-{i}"):
        debug = pathlib.Path(f"/tmp/cairn-demo-debug-{os.getpid()}-{i}.bin")
        debug.write_bytes(os.urandom(1 << 20))
        cairn.log_artifact(str(debug))
        debug.unlink()
        if i == 0:
            cairn.set_tag("keep", "true")
""")
    time.sleep(1.1)  # the policy below expires runs older than a second
    cairn(project, "config", "retention.runs.max_age", "1s")
    cairn(project, "config", "retention.runs.keep_if_tagged", "keep")
    cairn(project, "du")
    plan = cairn(project, "retention", "apply", "--dry-run")
    expect(plan, "Would delete 2 run(s)", "Would remove 2 object(s) from the cache")
    done = cairn(project, "retention", "apply")
    expect(done, "Deleted 2 run(s)")
    cairn(project, "du")
    cairn(project, "fsck")  # what stays is whole
    cairn(project, "config", "--unset", "retention.runs.max_age")


def package(base: Path, project: Path) -> Path:
    """The Production version as one immutable file: built twice (the same digest),
    signed and verified, loaded in an empty directory; one flipped byte fails verify."""
    print("\n# the Production version as one immutable package (an OCI image layout archive:")
    print("# weights, code, serving.yaml, schema.json, pinned requirements, its lineage)")
    uri = "models:/iris-classifier/Production"
    out = cairn(project, "package", "build", uri, "--include", "src/preprocess.py")
    path = project / "dist" / "iris-classifier-v3.cairnpkg"
    digest = out.split("digest ")[1].split()[0]
    again = cairn(project, "package", "build", uri, "--include", "src/preprocess.py",
                  "-o", str(base / "rebuilt"))
    expect(again, digest)
    assert (base / "rebuilt" / path.name).read_bytes() == path.read_bytes(), "rebuild differs"
    print(f"\nbuilt twice: the same bytes, digest {digest}")
    cairn(project, "package", "inspect", str(path))
    keys = base / "keys"
    keys.mkdir()
    cairn(project, "package", "keygen", str(keys / "release.pem"))
    cairn(project, "package", "sign", str(path), "--key", str(keys / "release.pem"))
    out = cairn(project, "package", "verify", str(path), "--key", str(keys / "release.pub"))
    expect(out, digest, "signed by key")
    lineage = cairn(project, "models", "lineage", uri)
    expect(lineage, f"package {digest[7:23]}")

    print("\n# a package needs no project: it loads in an empty directory, verified first")
    empty = base / "empty"
    empty.mkdir()
    loaded = python(empty, f"""
import cairn
model = cairn.load_model("package:{path}")
print("package", model.metadata.lineage["package_digest"][:23], "version",
      model.metadata.lineage["model"]["version"], "loaded")
""")
    expect(loaded, f"package {digest[:23]} version 3 loaded")

    print("\n# one flipped byte anywhere (here inside the weights) and verify refuses it")
    tampered = base / "tampered.cairnpkg"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    refused = run([*CAIRN, "package", "verify", str(tampered)], project, fails=True)
    expect(refused, "error: ", str(tampered))
    return path


def team_server(base: Path) -> None:
    """`cairn server` on a free local port: one training run through it with the Python
    API (its model sent to the server), the CLI listing runs through it, then stopped."""
    import socket
    import time
    import urllib.request

    print("\n# a team shares one server: `cairn server` (here SQLite + a local directory;")
    print("# teams give postgresql://… and s3://…), and clients set the tracking URI to it")
    home = base / "server"
    home.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    command = [*CAIRN, "server", "--backend-store-uri", f"sqlite:///{home / 'team.db'}",
               "--artifacts-destination", str(home / "artifacts"), "--port", str(port)]
    print(f"\n$ cairn {shlex.join(command[3:])} &")
    with open(home / "server.log", "wb") as log:
        server = subprocess.Popen(command, cwd=home, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"demo failed: the server did not start:\n"
                             f"{(home / 'server.log').read_text()}")
                time.sleep(0.1)
        trained = python(home, f"""
import cairn, cairn.sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
cairn.set_tracking_uri("{url}")
x, y = load_iris(return_X_y=True)
with cairn.start_run() as run:
    cairn.log_params({{"C": 1.0}})
    model = LogisticRegression(C=1.0, max_iter=500).fit(x, y)
    cairn.log_metric("accuracy", model.score(x, y))
    cairn.sklearn.log_model(model, "model")
version = cairn.register_model(f"runs:/{{run.info.run_id}}/model", "iris-team")
loaded = cairn.pyfunc.load_model("models:/iris-team/1")
print("run", run.info.run_id, "registered iris-team version", version.version,
      "predicts", [int(p) for p in loaded.predict(x[:3])])
""")
        expect(trained, "registered iris-team version 1", "predicts [0, 0, 0]")
        env = {**os.environ, "CAIRN_TRACKING_URI": url}
        listed = subprocess.run([*CAIRN, "runs", "list"], cwd=home, env=env,
                                capture_output=True, text=True, check=True).stdout
        print(f"\n$ CAIRN_TRACKING_URI={url} cairn runs list")
        print("  " + listed.rstrip().replace("\n", "\n  "))
        expect(listed, trained.split()[1])
        print(f"\n# the server answered at {url} (its API: {url}/api/v1/docs); stopping it")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
