"""End-to-end tour of Cairn on the embedded default (local store, no server, no network).

Trains a small scikit-learn model on a dataset that ships with scikit-learn, tracks the
data and the model, pushes to a local remote through git's pre-push hook, clones the
project fresh, pulls, checks every byte, and goes back to an older tagged model.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

CAIRN = [sys.executable, "-m", "cairn"]


def run(cmd: list[str], cwd: Path, show: bool = True) -> str:
    shown = "cairn " + shlex.join(cmd[3:]) if cmd[:3] == CAIRN else shlex.join(cmd)
    if show:
        print(f"\n$ {shown}")
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    out = (proc.stdout + proc.stderr).rstrip()
    if show and out:
        print("  " + out.replace("\n", "\n  "))
    if proc.returncode != 0:
        sys.exit(f"demo failed: `{shown}` exited {proc.returncode}")
    return proc.stdout


def cairn(cwd: Path, *args: str) -> str:
    return run([*CAIRN, *args], cwd)


def git(cwd: Path, *args: str, show: bool = True) -> str:
    return run(["git", *args], cwd, show)


def train(project: Path, C: float) -> None:
    """The 'training script': data/iris.csv in, models/classifier.pkl out."""
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris()
    data = project / "data" / "iris.csv"
    data.parent.mkdir(exist_ok=True)
    np.savetxt(data, np.column_stack([iris.data, iris.target]), delimiter=",", fmt="%g",
               header=",".join([*iris.feature_names, "target"]), comments="")
    table = np.loadtxt(data, delimiter=",", skiprows=1)
    X, y = table[:, :4], table[:, 4]
    model = LogisticRegression(C=C, max_iter=500).fit(X, y)
    (project / "models").mkdir(exist_ok=True)
    (project / "models" / "classifier.pkl").write_bytes(pickle.dumps(model))
    print(f"\n(trained LogisticRegression(C={C}); accuracy {model.score(X, y):.3f})")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="cairn-demo-"))
    env_git = {"GIT_AUTHOR_NAME": "Demo", "GIT_AUTHOR_EMAIL": "demo@cairn.invalid",
               "GIT_COMMITTER_NAME": "Demo", "GIT_COMMITTER_EMAIL": "demo@cairn.invalid"}
    os.environ.update({k: os.environ.get(k, v) for k, v in env_git.items()})
    project, origin, storage = base / "my-ml-project", base / "origin.git", base / "cairn-store"
    print(f"Working in {base}")

    git(base, "init", "-q", "--bare", "-b", "main", str(origin), show=False)
    git(base, "init", "-q", "-b", "main", str(project))
    git(project, "remote", "add", "origin", str(origin))
    cairn(project, "init")
    cairn(project, "remote", "add", "-d", "storage", str(storage))

    train(project, C=0.1)
    cairn(project, "add", "data", "models/classifier.pkl")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "v1: baseline logistic regression")
    git(project, "tag", "model-v1")
    v1 = sha(project / "models" / "classifier.pkl")

    train(project, C=10.0)
    cairn(project, "status")
    cairn(project, "add", "models/classifier.pkl")
    git(project, "commit", "-qam", "v2: weaker regularisation")
    git(project, "tag", "model-v2")
    v2 = sha(project / "models" / "classifier.pkl")
    print("\n# git push runs `cairn push` from the pre-push hook: nobody has to remember it")
    git(project, "push", "-q", "origin", "main", "--tags")
    cairn(project, "status", "--cloud")
    cairn(project, "du")

    clone = base / "fresh-clone"
    git(base, "clone", "-q", str(origin), str(clone))
    cairn(clone, "install-hooks")
    cairn(clone, "pull")
    assert sha(clone / "models" / "classifier.pkl") == v2, "pulled model differs"
    assert sha(clone / "data" / "iris.csv") == sha(project / "data" / "iris.csv")
    print(f"\nfresh clone has the exact model-v2 bytes (sha256 {v2})")

    print("\n# checking out an older tag brings back its model, through the post-checkout hook")
    git(clone, "checkout", "-q", "model-v1")
    assert sha(clone / "models" / "classifier.pkl") == v1, "model-v1 bytes differ"
    print(f"models/classifier.pkl is model-v1 again (sha256 {v1})")
    cairn(clone, "status")
    cairn(clone, "fsck")
    cairn(project, "gc", "--workspace", "--dry-run")
    print(f"\nDemo finished; everything is left in {base} to explore.")


if __name__ == "__main__":
    main()
