"""What every run records without being asked: code, data, params and environment.

All of it becomes run tags under ``cairn.`` (values are strings; structured ones JSON):

    cairn.git.commit, cairn.git.branch, cairn.git.dirty ("true"/"false"),
    cairn.git.diff_digest (blake3 of `git diff HEAD --binary`, only when dirty),
    cairn.source.argv (JSON list), cairn.source.entry_point, cairn.user, cairn.host,
    cairn.python, cairn.packages (JSON {distribution: version}),
    cairn.data (JSON {path: digest} of pointer-file outs and cairn.lock deps/outs),
    cairn.stages (JSON {stage: [out paths]} from cairn.lock),
    cairn.params (JSON of params.yaml)

Cheap by design: two `git` calls at most (`git status` runs while the data files are
read), package versions from installed metadata (nothing is imported), pointer files
and cairn.lock read without YAML when Cairn wrote them.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from cairn.errors import CairnError
from cairn.identity import current_user
from cairn.objects.hashing import hash_bytes

PREFIX = "cairn."
PARENT_RUN_TAG = "cairn.parentRunId"
PACKAGES = ("numpy", "pandas", "scikit-learn", "scipy", "torch", "tensorflow", "xgboost",
            "lightgbm", "onnx", "onnxruntime", "skops", "cairn")
PARAMS_FILE = "params.yaml"


def capture(root: Path | None) -> dict[str, str]:
    """The lineage tags of a run started now, in project (or git work tree) `root`."""
    tags = environment()
    work_tree = root or _git_toplevel()
    # `git status` runs while the data files are read (it is most of the time taken)
    status = _start_git(work_tree, *STATUS_ARGS) if work_tree is not None else None
    outputs: set[str] = set()
    try:
        if root is not None:
            tags.update(data_state(root))
            if work_tree is not None:
                outputs = _pipeline_outputs(root, work_tree, tags)
    finally:  # the git process is always waited for
        if work_tree is not None:
            tags.update(git_state(work_tree, status, outputs))
            tags["cairn.source.entry_point"] = entry_point(work_tree)
    return tags


def _pipeline_outputs(root: Path, work_tree: Path, tags: dict[str, str]) -> set[str]:
    """The pipeline's out paths, relative to the git work tree: a stage that `repro` is
    running has just removed them, and that is no uncommitted change to the code."""
    try:
        prefix = root.resolve().relative_to(work_tree.resolve()).as_posix()
    except ValueError:
        return set()
    stages = json_tag(tags, "cairn.stages") or {}
    return {out if prefix == "." else f"{prefix}/{out}"
            for outs in stages.values() for out in outs}


def environment() -> dict[str, str]:
    return dict(_environment())


@functools.cache
def _environment() -> dict[str, str]:
    """Fixed for the life of a process (package versions cost milliseconds to read)."""
    return {
        "cairn.source.argv": json.dumps(sys.argv),
        "cairn.source.entry_point": entry_point(None),
        "cairn.user": current_user(),
        "cairn.host": socket.gethostname(),
        "cairn.python": platform.python_version(),
        "cairn.packages": json.dumps(package_versions(), sort_keys=True),
    }


def entry_point(root: Path | None) -> str:
    script = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if not script or script == "-c" or not os.path.exists(script):
        return script or "<interactive>"
    path = Path(script).absolute()
    if root is not None:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path)


def package_versions() -> dict[str, str]:
    from importlib import metadata

    found: dict[str, str] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


# -- git -------------------------------------------------------------------------------

STATUS_ARGS = ("status", "--porcelain=v2", "--branch", "-z", "--untracked-files=no")


def _start_git(root: Path, *args: str) -> subprocess.Popen[bytes] | None:
    try:
        return subprocess.Popen(["git", *args], cwd=root, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError:  # no git installed
        return None


def _git_output(proc: subprocess.Popen[bytes] | None) -> bytes | None:
    if proc is None:
        return None
    out, _err = proc.communicate()
    return out if proc.returncode == 0 else None


def _git(root: Path, *args: str) -> bytes | None:
    return _git_output(_start_git(root, *args))


def _git_toplevel() -> Path | None:
    from cairn.project.context import find_git_root

    return find_git_root(Path.cwd())  # no process spawned outside git


def git_state(root: Path, status: subprocess.Popen[bytes] | None = None,
              outputs: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
    """Commit, branch, dirty flag (tracked files only, pipeline `outputs` aside) and,
    when dirty, a diff digest. `status`: a `git status` (STATUS_ARGS) already started in
    `root`."""
    out = _git_output(status) if status is not None else _git(root, *STATUS_ARGS)
    if out is None:
        return {}
    commit, branch, dirty = "", "", False
    records = iter(out.split(b"\0"))
    for record in records:
        if record.startswith(b"# branch.oid "):
            commit = record[len(b"# branch.oid "):].decode()
        elif record.startswith(b"# branch.head "):
            branch = record[len(b"# branch.head "):].decode()
        elif record and not record.startswith(b"#"):
            if record.startswith(b"2 "):  # a rename: its original path follows
                next(records, None)
            if not _is_output(_status_path(record), outputs):
                dirty = True
    tags = {"cairn.git.dirty": "true" if dirty else "false"}
    if commit and commit != "(initial)":
        tags["cairn.git.commit"] = commit
        if dirty:
            diff = _git(root, "diff", "HEAD", "--binary")
            if diff is not None:
                tags["cairn.git.diff_digest"] = hash_bytes(diff)
    if branch and branch != "(detached)":
        tags["cairn.git.branch"] = branch
    return tags


def _status_path(record: bytes) -> str:
    """The path of a `git status --porcelain=v2 -z` change record."""
    fields = {b"1": 8, b"2": 9, b"u": 10}.get(record[:1])
    if fields is None:
        return ""
    parts = record.split(b" ", fields)
    return os.fsdecode(parts[-1]) if len(parts) > fields else ""


def _is_output(path: str, outputs: set[str] | frozenset[str]) -> bool:
    return bool(path) and any(path == out or path.startswith(out.rstrip("/") + "/")
                              for out in outputs)


# -- data and params -------------------------------------------------------------------

def data_state(root: Path) -> dict[str, str]:
    tags: dict[str, str] = {}
    data = pointer_digests(root)
    stages = stage_outs(root, data)
    if data:
        tags["cairn.data"] = json.dumps(data, sort_keys=True)
    if stages:
        tags["cairn.stages"] = json.dumps(stages, sort_keys=True)
    params = read_params(root / PARAMS_FILE)
    if params is not None:
        tags["cairn.params"] = json.dumps(params, sort_keys=True, default=str)
    return tags


def pointer_digests(root: Path) -> dict[str, str]:
    from cairn.project import pointer

    found: dict[str, str] = {}
    for path in pointer.find_pointer_files(root):
        try:
            ptr = pointer.load(path)
        except CairnError:
            continue  # a broken pointer file is `cairn status`'s business, not the run's
        rel_dir = ptr.directory.relative_to(root).as_posix()
        for out in ptr.outs:
            found[out.path if rel_dir == "." else f"{rel_dir}/{out.path}"] = out.digest
    return found


def stage_outs(root: Path, data: dict[str, str]) -> dict[str, list[str]]:
    """Stage name → its out paths, from the root cairn.lock; deps and outs are added to `data`."""
    from cairn.project.lockfile import LOCK_NAME, read_lock

    try:
        lock = read_lock(root, LOCK_NAME)
    except (CairnError, OSError):
        return {}  # a broken lock file is `cairn status`'s business, not the run's
    found: dict[str, list[str]] = {}
    for name, stage in lock.stages.items():
        for entry in (*stage.deps, *stage.outs):
            data.setdefault(entry.path, entry.digest)
        if stage.outs:
            found[name] = [out.path for out in stage.outs]
    return found


def read_params(path: Path) -> Any:
    """params.yaml parsed; None when absent or unreadable (recorded as absent rather than
    failing the run)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    import yaml

    from cairn import yamlfile

    try:
        return yamlfile.safe_load(data)
    except yaml.YAMLError:
        return None


def json_tag(tags: dict[str, str], key: str) -> Any:
    """A JSON-valued lineage tag decoded, or None when absent or not JSON."""
    value = tags.get(key)
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None
