"""`cairn status` with a pipeline file it cannot read: the data status, then the error
line repro would give (file and line), and its exit code; never "up to date"."""

from __future__ import annotations

import json

import pytest

from tests.conftest import CliRepo

BAD_PIPELINES = [
    ("cairn.yaml", "stages:\n  a:\n    cmd: [echo\n", "cairn.yaml:4"),  # invalid YAML
    ("cairn.yaml", "stages:\n  a:\n    cmd: echo\n    bogus: 1\n", "cairn.yaml:4"),
    ("cairn.yaml", "stages:\n  a:\n    cmd: echo\n  a:\n    cmd: true\n", "cairn.yaml:4"),
    ("dvc.yaml", "stages:\n  a:\n    cmd: echo\n    outz: [x]\n", "dvc.yaml:4"),
]


@pytest.fixture(params=BAD_PIPELINES, ids=["yaml", "unknown-key", "duplicate", "dvc.yaml"])
def bad_pipeline(repo: CliRepo, request: pytest.FixtureRequest) -> tuple[CliRepo, str]:
    name, text, where = request.param
    repo.write(name, text)
    return repo, where


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line]
    assert len(lines) == 1, stderr
    return lines[0]


def test_status_says_the_pipeline_cannot_be_read(bad_pipeline: tuple[CliRepo, str]) -> None:
    repo, where = bad_pipeline
    result = repo.cairn("status", ok=False)
    assert result.exit_code == 2
    assert "up to date" not in result.output
    line = error_line(result.stderr)
    assert line.startswith(f"error: {where}: ")
    assert line == error_line(repo.cairn("repro", ok=False).stderr)  # as repro says it


def test_the_data_status_comes_first(bad_pipeline: tuple[CliRepo, str]) -> None:
    repo, where = bad_pipeline
    repo.write("data.csv", "1\n")
    repo.cairn("add", "data.csv")
    repo.write("data.csv", "2\n")
    result = repo.cairn("status", ok=False)
    assert result.exit_code == 2
    assert result.stdout.splitlines() == ["\tmodified:     data.csv"]
    assert error_line(result.stderr).startswith(f"error: {where}: ")

    report = repo.cairn("status", "--json", ok=False)
    assert report.exit_code == 2
    assert json.loads(report.stdout) == {"data.csv": {"path": "data.csv",
                                                      "state": "modified"}}
    assert error_line(report.stderr).startswith(f"error: {where}: ")


def test_unchanged_data_and_an_unreadable_pipeline(bad_pipeline: tuple[CliRepo, str]) -> None:
    repo, _ = bad_pipeline
    result = repo.cairn("status", ok=False)
    assert result.stdout == "Tracked data is unchanged.\n"
    report = repo.cairn("status", "--json", ok=False)
    assert (report.exit_code, json.loads(report.stdout)) == (2, {})
