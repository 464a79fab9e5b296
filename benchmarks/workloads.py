"""The benchmark workloads: what each prepares (untimed) and which one command it times."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from datasets import BigFile, DataSpec, FileTree, GiB, MiB, count_files, rewrite, same_tree, touch
from measure import tail
from peers import Command, Peer

CHANGED_FILES = 100  # files touched / rewritten by the status-*-touched/changed workloads


class SetupError(RuntimeError):
    """An untimed preparation step failed; the workload cannot be measured for this tool."""


@dataclass
class Repo:
    """One tool's repository for one workload, and the scratch directory beside it."""

    peer: Peer
    base: Path  # scratch: the repository, the site cache, a local remote, the log
    env: Mapping[str, str]
    jobs: int
    remote_url: str | None = None
    remote_dir: Path | None = None  # local remotes only
    remote_count: Callable[[], int] | None = None

    @property
    def root(self) -> Path:
        return self.base / "repo"

    @property
    def log(self) -> Path:
        return self.base / "log.txt"

    def sh(self, cmd: Command) -> None:
        """Run an untimed setup command, appending its output to the log."""
        with open(self.log, "ab") as log:
            log.write(f"$ {' '.join(cmd)}\n".encode())
            log.flush()
            result = subprocess.run(
                cmd,
                cwd=self.root,
                env=dict(self.env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        if result.returncode != 0:
            raise SetupError(f"`{' '.join(cmd[1:])}` exited {result.returncode}:\n{tail(self.log)}")


Step = Callable[[Repo], None]
Check = Callable[[Repo, Path], str | None]  # (repo, generated data source) -> problem


@dataclass(frozen=True)
class Workload:
    name: str
    data: DataSpec
    command: Callable[[Repo], Command]
    description: str
    prepare: tuple[Step, ...] = ()  # untimed, after init, data copy and remote config
    reset: Callable[[Repo, int], None] | None = None  # untimed, before each timed run
    fresh_repo: bool = False  # build a new repository for every run (the command mutates it)
    remote: Literal["local", "s3"] | None = None
    tools: tuple[str, ...] = ("dvc", "cairn")
    check: Check | None = None  # after each run; a problem is reported as a warning
    baseline: bool = False  # also time a plain read + write + fsync of the data
    scaling: bool = False  # part of the clean-status growth series


@dataclass(frozen=True)
class Sizes:
    big_file: int
    tree: int  # files for add / status / push / pull
    big_tree: int  # files for the large clean status
    steps: tuple[int, ...]  # extra Cairn-only clean-status sizes


FULL = Sizes(big_file=1 * GiB, tree=10_000, big_tree=100_000, steps=(25_000, 50_000))
QUICK = Sizes(big_file=64 * MiB, tree=1_000, big_tree=10_000, steps=(2_500, 5_000))


# --- steps -------------------------------------------------------------------------------


def add(spec: DataSpec) -> Step:
    return lambda repo: repo.sh(repo.peer.add(spec.path))


def status(repo: Repo) -> None:
    repo.sh(repo.peer.status())


def push(repo: Repo) -> None:
    repo.sh(repo.peer.push(repo.jobs))


def touch_some(tree: FileTree) -> Callable[[Repo, int], None]:
    return lambda repo, _run: touch(repo.root, tree.sample(CHANGED_FILES))


def rewrite_some(tree: FileTree) -> Callable[[Repo, int], None]:
    return lambda repo, run: rewrite(repo.root, tree.sample(CHANGED_FILES), seed=run)


def empty_cache_and_workspace(tree: FileTree) -> Callable[[Repo, int], None]:
    """As in a fresh clone: no cache and no tracked data, only the pointer files."""

    def reset(repo: Repo, run: int) -> None:
        # Moved aside, not deleted: mass deletes on this disk slow the file creations of
        # the timed pull that follows. The workload's clean-up deletes them afterwards.
        for path in (repo.root / repo.peer.cache_dir, repo.root / tree.path):
            if path.exists():
                path.rename(repo.base / f"{path.name}.gone-{run}")

    return reset


# --- checks ------------------------------------------------------------------------------


def workspace_copy_gone(spec: DataSpec) -> Callable[[Repo, int], None]:
    """The tracked file is missing from the workspace (its object is in the cache)."""

    def reset(repo: Repo, run: int) -> None:
        path = repo.root / spec.path
        if path.exists():
            path.chmod(0o644)
            path.rename(repo.base / f"{path.name}.gone-{run}")

    return reset


def file_restored(spec: DataSpec) -> Check:
    def check(repo: Repo, source: Path) -> str | None:
        restored = repo.root / spec.path
        if not restored.exists():
            return f"{spec.path} not checked out"
        return None if restored.stat().st_size == (source / spec.path).stat().st_size \
            else f"{spec.path} has the wrong size"

    return check


def pointer_written(spec: DataSpec) -> Check:
    def check(repo: Repo, _source: Path) -> str | None:
        pointer = repo.root / (spec.path + repo.peer.pointer_suffix)
        return None if pointer.exists() else f"{pointer.name} not written"

    return check


def remote_filled(tree: FileTree) -> Check:
    def check(repo: Repo, _source: Path) -> str | None:
        assert repo.remote_count is not None
        found = repo.remote_count()
        return None if found >= tree.count else f"remote holds {found} objects < {tree.count}"

    return check


def workspace_restored(tree: FileTree) -> Check:
    def check(repo: Repo, source: Path) -> str | None:
        if same_tree(source / tree.path, repo.root / tree.path):
            return None
        restored = repo.root / tree.path
        found = count_files(restored) if restored.exists() else 0
        return f"pull restored {found}/{tree.count} files or wrong content"

    return check


# --- the catalogue -----------------------------------------------------------------------


def catalogue(sizes: Sizes) -> list[Workload]:
    big = BigFile(sizes.big_file)
    tree = FileTree(sizes.tree)
    return [
        Workload(
            "add-1gib",
            big,
            lambda r: r.peer.add(big.path),
            f"add one {big.describe()} random file (plus a dd read+write+fsync baseline)",
            fresh_repo=True,
            check=pointer_written(big),
            baseline=True,
        ),
        Workload(
            "checkout-1gib",
            big,
            lambda r: r.peer.checkout(),
            f"checkout one {big.describe()} file from the cache (copied: no reflink here); "
            "Cairn hashes what it copies",
            prepare=(add(big),),
            reset=workspace_copy_gone(big),
            check=file_restored(big),
        ),
        Workload(
            "add-10k",
            tree,
            lambda r: r.peer.add(tree.path),
            f"add a directory of {tree.describe()} of 1-8 KiB",
            fresh_repo=True,
            check=pointer_written(tree),
        ),
        *status_workloads(sizes, tree),
        *transfer_workloads(tree, "local"),
        *transfer_workloads(tree, "s3"),
    ]


def status_workloads(sizes: Sizes, tree: FileTree) -> list[Workload]:
    def clean(name: str, t: FileTree, tools: tuple[str, ...] = ("dvc", "cairn")) -> Workload:
        return Workload(
            name,
            t,
            lambda r: r.peer.status(),
            f"status, nothing changed, {t.describe()}",
            prepare=(add(t), status),
            tools=tools,
            scaling=True,
        )

    # Names follow the full sizes; --quick shrinks the data but keeps the names.
    growth = [
        clean(f"status-{full // 1000}k-clean", FileTree(n), tools=("cairn",))
        for full, n in zip(FULL.steps, sizes.steps, strict=True)
    ]
    return [
        clean("status-10k-clean", tree),
        Workload(
            "status-10k-touched",
            tree,
            lambda r: r.peer.status(),
            f"status after touching (mtime only) {CHANGED_FILES} of {tree.describe()}",
            prepare=(add(tree), status),
            reset=touch_some(tree),
        ),
        Workload(
            "status-10k-changed",
            tree,
            lambda r: r.peer.status(),
            f"status after rewriting {CHANGED_FILES} of {tree.describe()} (same sizes)",
            prepare=(add(tree), status),
            reset=rewrite_some(tree),
        ),
        *growth,
        clean("status-100k-clean", FileTree(sizes.big_tree)),
    ]


def transfer_workloads(tree: FileTree, remote: Literal["local", "s3"]) -> list[Workload]:
    where = "a local directory" if remote == "local" else "S3 (local moto server)"
    return [
        Workload(
            f"push-10k-{remote}",
            tree,
            lambda r: r.peer.push(r.jobs),
            f"push {tree.describe()} to an empty remote on {where}",
            prepare=(add(tree),),
            fresh_repo=True,
            remote=remote,
            check=remote_filled(tree),
        ),
        Workload(
            f"pull-10k-{remote}",
            tree,
            lambda r: r.peer.pull(r.jobs),
            f"pull {tree.describe()} from {where} with no cache and no workspace copy",
            prepare=(add(tree), push),
            reset=empty_cache_and_workspace(tree),
            remote=remote,
            check=workspace_restored(tree),
        ),
        Workload(
            f"push-noop-{remote}",
            tree,
            lambda r: r.peer.push(r.jobs),
            f"push again to {where} when the remote already has all {tree.describe()}",
            prepare=(add(tree), push),
            remote=remote,
        ),
    ]
