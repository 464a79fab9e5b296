"""`cairn reproduce` against rebuilding the same model by hand, on examples/iris.

Set up as examples/demo.py does, in a temp dir: a git project with a bare origin and a
local Cairn remote, data/raw tracked, `cairn repro` (preprocess -> train) committed, then
`cairn repro -f train` on that clean commit registers iris-classifier v2 and is pushed.

Then, alternating, a few times each:

- reproduce: `cairn reproduce models:/iris-classifier/2` (a digest match) in the
  project (scratch worktree, data from the cache, forced repro, compare, clean up);
- by hand:   `git clone` the origin, `cairn pull` from the local remote, `cairn repro
  --force train` (the same stages rerun) in the clone.

Prints a Markdown table of medians and the overhead ratio (reproduce / by hand).

    python benchmarks/bench_reproduce.py [--runs 5] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "iris"
CAIRN = [sys.executable, "-m", "cairn"]
MODEL = "models:/iris-classifier/2"


def run(cmd: list[str], cwd: Path, ok_codes: tuple[int, ...] = (0,)) -> float:
    """Seconds `cmd` took; exits the benchmark if it fails."""
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - started
    if proc.returncode not in ok_codes:
        sys.exit(f"bench failed: {' '.join(cmd)} exited {proc.returncode} in {cwd}:\n"
                 f"{proc.stdout}{proc.stderr}")
    return took


def cairn(cwd: Path, *args: str) -> float:
    return run([*CAIRN, *args], cwd)


def git(cwd: Path, *args: str) -> float:
    return run(["git", *args], cwd)


def write_raw_data(project: Path) -> None:
    import numpy as np
    from sklearn.datasets import load_iris

    iris = load_iris()
    raw = project / "data" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    np.savetxt(raw / "iris.csv", np.column_stack([iris.data, iris.target]), delimiter=",",
               fmt="%g", header=",".join([*iris.feature_names, "target"]), comments="")


def set_up(base: Path) -> tuple[Path, Path]:
    project, origin = base / "project", base / "origin.git"
    git(base, "init", "-q", "--bare", "-b", "main", str(origin))
    git(base, "init", "-q", "-b", "main", str(project))
    git(project, "remote", "add", "origin", str(origin))
    cairn(project, "init")
    cairn(project, "remote", "add", "-d", "storage", str(base / "storage"))
    write_raw_data(project)
    (project / "src").mkdir()
    for name in ("preprocess.py", "train.py"):
        shutil.copy(EXAMPLE / name, project / "src" / name)
    for name in ("cairn.yaml", "params.yaml"):
        shutil.copy(EXAMPLE / name, project / name)
    cairn(project, "add", "data/raw")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "iris pipeline and data")
    cairn(project, "repro")  # v1: trained before its lock and .gitignore were committed
    git(project, "add", "-A")
    git(project, "commit", "-qm", "v1")
    cairn(project, "repro", "-f", "train")  # v2: on a clean commit — reproducible
    cairn(project, "push")
    git(project, "push", "-q", "origin", "main")
    return project, origin


def by_hand(base: Path, origin: Path, i: int) -> float:
    clone = base / f"clone-{i}"
    took = git(base, "clone", "-q", str(origin), str(clone))
    took += cairn(clone, "pull")
    took += cairn(clone, "repro", "--force", "train")
    shutil.rmtree(clone)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    os.environ.update({k: os.environ.get(k, "Bench") for k in ("GIT_AUTHOR_NAME",
                                                              "GIT_COMMITTER_NAME")})
    os.environ.update({k: os.environ.get(k, "bench@cairn.invalid")
                       for k in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL")})
    # stages run `python …` as a user's activated virtualenv would: this interpreter
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    base = Path(tempfile.mkdtemp(prefix="cairn-bench-reproduce-"))
    try:
        project, origin = set_up(base)
        cairn(project, "reproduce", MODEL)  # warm-up, untimed: a digest match (exit 0)
        timings: dict[str, list[float]] = {"reproduce": [], "by hand": []}
        for i in range(args.runs):
            timings["reproduce"].append(cairn(project, "reproduce", MODEL))
            timings["by hand"].append(by_hand(base, origin, i))
        report(timings, args.runs)
    finally:
        if args.keep:
            print(f"\nkept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def report(timings: dict[str, list[float]], runs: int) -> None:
    medians = {k: statistics.median(v) for k, v in timings.items()}
    print(f"\n`cairn reproduce {MODEL}` vs clone + pull + `repro --force train` "
          f"(examples/iris, {runs} alternating runs, median seconds)\n")
    print("| workload | median s | min s | max s |")
    print("|---|---:|---:|---:|")
    what = {"reproduce": f"`cairn reproduce {MODEL}`",
            "by hand": "`git clone` + `cairn pull` + `cairn repro --force train`"}
    for key, values in timings.items():
        print(f"| {what[key]} | {medians[key]:.2f} | {min(values):.2f} | {max(values):.2f} |")
    print(f"\noverhead ratio (reproduce / by hand): "
          f"{medians['reproduce'] / medians['by hand']:.2f}")


if __name__ == "__main__":
    main()
