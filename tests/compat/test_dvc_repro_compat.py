"""`cairn repro` decides like `dvc repro`: the same dvc.yaml, the same edits, the same stages run.

Two identical git repositories get the same three-stage pipeline (prepare -> train, and an
independent report) with params.yaml; one is a DVC project, the other a Cairn project
reading that dvc.yaml unchanged. Each step of the table applies one edit to both, runs
`dvc repro` in one and `cairn repro` in the other, and reads from their output which stages
ran and which were restored from the run cache. Both must match each other and the table.
The steps build on each other, as a user's edits do.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.compat.conftest import DvcTool, check
from tests.conftest import git

pytestmark = [pytest.mark.compat, pytest.mark.slow,
              pytest.mark.timeout(900)]  # the first session builds DVC's virtualenv

PIPELINE = {
    "stages": {
        "prepare": {
            "cmd": "cp data/raw.txt data/prepared.txt",
            "deps": ["data/raw.txt"],
            "params": ["prepare.factor"],
            "outs": ["data/prepared.txt"],
        },
        "train": {
            "cmd": "cat data/prepared.txt params.yaml > model.txt"
                   " && echo '{\"acc\": 0.5}' > metrics.json",
            "deps": ["data/prepared.txt"],
            "params": ["train.lr"],
            "outs": ["model.txt"],
            "metrics": [{"metrics.json": {"cache": False}}],
        },
        "report": {
            "cmd": "cp notes.txt report.txt",
            "deps": ["notes.txt"],
            "params": ["report.title"],
            "outs": ["report.txt"],
        },
    }
}
PARAMS = "prepare:\n  factor: 2\ntrain:\n  lr: 0.01\nreport:\n  title: Weekly\nunused:\n  seed: 7\n"
OUTPUTS = ("data/prepared.txt", "model.txt", "metrics.json", "report.txt")
ALL = {"prepare", "train", "report"}

# "Running stage 'x':" from both tools (Cairn adds the reason after the colon).
RAN = re.compile(r"^Running stage '([^']+)':", re.MULTILINE)
RESTORED = re.compile(
    r"^(?:Stage '([^']+)' is cached - skipping run"  # DVC
    r"|Restored stage '([^']+)' from the run cache)",  # Cairn
    re.MULTILINE,
)

Edit = Callable[[Path], None]


def unchanged(root: Path) -> None:
    pass


def write(rel: str, text: str) -> Edit:
    def edit(root: Path) -> None:
        (root / rel).write_text(text)
    return edit


def replace(rel: str, old: str, new: str) -> Edit:
    def edit(root: Path) -> None:
        path = root / rel
        text = path.read_text()
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new, 1))
    return edit


def touch(rel: str) -> Edit:
    """New mtime, same bytes."""
    def edit(root: Path) -> None:
        path = root / rel
        stat = path.stat()
        path.touch()
        assert path.stat().st_mtime_ns != stat.st_mtime_ns
    return edit


def delete(rel: str) -> Edit:
    def edit(root: Path) -> None:
        (root / rel).unlink()
    return edit


@dataclass(frozen=True)
class Step:
    what: str
    edit: Edit
    ran: frozenset[str]
    restored: frozenset[str] = field(default_factory=frozenset)


def step(what: str, edit: Edit, ran: set[str], restored: set[str] | None = None) -> Step:
    return Step(what, edit, frozenset(ran), frozenset(restored or ()))


# Expected: what DVC 3 does; each row starts from the state the row above left.
TABLE = [
    step("first repro", unchanged, ALL),
    step("nothing changed", unchanged, set()),
    step("dep edited (data/raw.txt)", write("data/raw.txt", "raw 2\n"), {"prepare", "train"}),
    step("dep touched, same bytes", touch("data/raw.txt"), set()),
    step("used param edited (train.lr)", replace("params.yaml", "lr: 0.01", "lr: 0.02"),
         {"train"}),
    step("param no stage uses edited", replace("params.yaml", "seed: 7", "seed: 8"), set()),
    # prepare runs again; its output has the same bytes, so train does not.
    step("cmd changed, same output (prepare)",
         replace("dvc.yaml", "cp data/raw.txt data/prepared.txt",
                 "cat data/raw.txt > data/prepared.txt"), {"prepare"}),
    step("independent stage's dep edited (notes.txt)", write("notes.txt", "notes 2\n"),
         {"report"}),
    # Neither tool runs the command again: the outputs come back from the cache.
    step("out deleted (model.txt)", delete("model.txt"), set(), {"train"}),
    step("param back to an earlier value (train.lr)",
         replace("params.yaml", "lr: 0.02", "lr: 0.01"), set(), {"train"}),
]


@dataclass(frozen=True)
class Outcome:
    ran: frozenset[str]
    restored: frozenset[str]

    @classmethod
    def parse(cls, output: str) -> Outcome:
        restored = {a or b for a, b in RESTORED.findall(output)}
        return cls(frozenset(RAN.findall(output)), frozenset(restored))

    def __str__(self) -> str:
        ran = ", ".join(sorted(self.ran)) or "-"
        return ran + (f" (restored: {', '.join(sorted(self.restored))})" if self.restored else "")


def cairn(root: Path, *args: str) -> str:
    """The real entry point in a child process, as a user would run it."""
    cmd = [sys.executable, "-m", "cairn", *args]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    return check(proc, ["cairn", *args])


def content(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def make_copies(tmp_path: Path, dvc: DvcTool) -> tuple[Path, Path]:
    """Two identical git repositories with the pipeline: a DVC one and a Cairn one."""
    roots = tmp_path / "dvc", tmp_path / "cairn"
    for root in roots:
        (root / "data").mkdir(parents=True)
        (root / "data" / "raw.txt").write_text("raw 1\n")
        (root / "notes.txt").write_text("notes 1\n")
        (root / "params.yaml").write_text(PARAMS)
        (root / "dvc.yaml").write_text(yaml.safe_dump(PIPELINE, sort_keys=False))
        git(root, "init", "-q", "-b", "main")
    dvc.init(roots[0])
    cairn(roots[1], "init")
    return roots


def test_repro_runs_the_stages_dvc_runs(tmp_path: Path, dvc: DvcTool) -> None:
    dvc_root, cairn_root = make_copies(tmp_path, dvc)
    rows, failed = [], False
    for row in TABLE:
        row.edit(dvc_root)
        row.edit(cairn_root)
        expected = Outcome(row.ran, row.restored)
        by_dvc = Outcome.parse(check(dvc.run(dvc_root, "repro"), ["dvc", "repro"]))
        by_cairn = Outcome.parse(cairn(cairn_root, "repro"))
        differ = [p for p in OUTPUTS if content(dvc_root / p) != content(cairn_root / p)]
        ok = by_dvc == expected == by_cairn and not differ
        failed |= not ok
        rows.append(f"{'ok ' if ok else 'BAD'} | {row.what:45} | expected {expected} | dvc {by_dvc}"
                    f" | cairn {by_cairn}" + (f" | outputs differ: {differ}" if differ else ""))
    assert not failed, "stages run (dvc vs cairn):\n" + "\n".join(rows)
