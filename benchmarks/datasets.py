"""Benchmark data: generated once per run of the harness, then copied into every repository.

Content is pseudo-random from a fixed seed, so every tool (and every run) sees the same bytes.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
_CHUNK = 16 * MiB
FILES_PER_DIR = 100  # leaf directory size of a file tree
DIRS_PER_GROUP = 10  # leaf directories under each top-level directory


@dataclass(frozen=True)
class BigFile:
    """One file of random bytes, tracked as ``big.bin``."""

    size: int
    path: str = "big.bin"

    @property
    def key(self) -> str:
        return f"big-{self.size}"

    def describe(self) -> str:
        return _human_bytes(self.size)

    def nfiles(self) -> int:
        return 1

    def generate(self, dest: Path) -> None:
        rng = random.Random(self.size)
        with open(dest / self.path, "wb") as out:
            for offset in range(0, self.size, _CHUNK):
                out.write(rng.randbytes(min(_CHUNK, self.size - offset)))


@dataclass(frozen=True)
class FileTree:
    """A directory ``data/`` of ``count`` random files of 1-8 KiB, two directory levels deep."""

    count: int
    path: str = "data"

    @property
    def key(self) -> str:
        return f"tree-{self.count}"

    def describe(self) -> str:
        return f"{self.count:,} files"

    def nfiles(self) -> int:
        return self.count

    def relpaths(self) -> Iterator[str]:
        for i in range(self.count):
            group, leaf = divmod(i // FILES_PER_DIR, DIRS_PER_GROUP)
            yield f"{self.path}/d{group:03d}/s{leaf}/f{i:06d}.bin"

    def generate(self, dest: Path) -> None:
        rng = random.Random(self.count)
        for rel in self.relpaths():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(rng.randbytes(rng.randint(1 * KiB, 8 * KiB)))

    def sample(self, n: int) -> list[str]:
        """``n`` files spread evenly over the tree."""
        step = max(1, self.count // n)
        return list(self.relpaths())[::step][:n]


DataSpec = BigFile | FileTree


class DataCache:
    """Generates each data set once under ``root`` and copies it into repositories."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def source(self, spec: DataSpec) -> Path:
        src = self.root / spec.key
        if not (src / ".complete").exists():
            shutil.rmtree(src, ignore_errors=True)
            src.mkdir(parents=True)
            started = time.perf_counter()
            spec.generate(src)
            (src / ".complete").touch()
            print(f"  generated {spec.describe()} in {time.perf_counter() - started:.1f}s")
        return src

    def copy_into(self, spec: DataSpec, repo: Path) -> None:
        # cp -a is several times faster than shutil.copytree over 100,000 files.
        subprocess.run(["cp", "-a", str(self.source(spec) / spec.path), str(repo)], check=True)


def settle(*roots: Path) -> None:
    """Warm the page cache with ``roots``, then flush dirty pages left by the preparation.

    Without the sync, writeback of data copied just before would compete with the timed run.
    """
    warm(*roots)
    os.sync()
    time.sleep(1)  # let the filesystem finish the deletes and writeback of the setup


def warm(*roots: Path) -> None:
    """Read every file under ``roots`` (skipping .git) so the page cache holds them."""
    for root in roots:
        if root.is_file():
            _read_all(root)
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            if ".git" in dirnames:
                dirnames.remove(".git")
            for name in filenames:
                _read_all(Path(dirpath, name))


def _read_all(path: Path) -> None:
    with open(path, "rb", buffering=0) as f:
        while f.read(_CHUNK):
            pass


def touch(repo: Path, relpaths: list[str]) -> None:
    """Bump the mtime of each file without changing its content."""
    now = time.time_ns()
    for i, rel in enumerate(relpaths):
        stamp = now + i * 1000
        os.utime(repo / rel, ns=(stamp, stamp))


def rewrite(repo: Path, relpaths: list[str], seed: int) -> None:
    """Give each file new random content of the same size, replacing (never editing) it.

    Replacing keeps cache objects safe whatever link type a tool uses.
    """
    rng = random.Random(seed)
    for rel in relpaths:
        target = repo / rel
        size = target.stat().st_size
        target.unlink()
        target.write_bytes(rng.randbytes(size))


def count_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def same_tree(expected: Path, actual: Path) -> bool:
    """True when ``actual`` holds exactly the files of ``expected`` with identical bytes."""
    if not actual.exists():
        return False
    want = {p.relative_to(expected) for p in expected.rglob("*") if p.is_file()}
    have = {p.relative_to(actual) for p in actual.rglob("*") if p.is_file()}
    if want != have:
        return False
    return all((expected / rel).read_bytes() == (actual / rel).read_bytes() for rel in want)


def _human_bytes(size: int) -> str:
    if size >= GiB and size % GiB == 0:
        return f"{size // GiB} GiB"
    return f"{size / MiB:g} MiB"
