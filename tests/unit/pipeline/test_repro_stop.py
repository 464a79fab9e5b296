"""Stopping stage commands: process groups, SIGKILL after the grace period, signal
handlers installed only for a repro in the main thread and put back after."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from cairn.errors import Interrupted
from cairn.pipeline import repro as repro_module
from cairn.pipeline.repro import Commands, repro, run_command
from cairn.project.context import open_project
from tests.conftest import CliRepo
from tests.processes import alive, pid_in, wait_for


def run_in_thread(cmd: str, cwd: Path, commands: Commands) -> list[int]:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(run_command(cmd, cwd, None,
                                                                      commands)))
    thread.start()
    wait_for(lambda: pid_in(cwd / "loop.pid") is not None)
    commands.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()
    return codes


def test_stop_ends_the_command_and_what_it_started(tmp_path: Path) -> None:
    commands = Commands()
    codes = run_in_thread("(while :; do sleep 0.05; done) & echo $! > loop.pid; "
                          "echo $$ > sh.pid; wait", tmp_path, commands)
    assert codes == [-signal.SIGTERM]
    pids = [pid_in(tmp_path / "sh.pid"), pid_in(tmp_path / "loop.pid")]
    wait_for(lambda: not any(alive(p) for p in pids if p is not None))
    assert run_command("touch after", tmp_path, None, commands) == -signal.SIGTERM
    assert not (tmp_path / "after").exists()  # a stopped run starts nothing more


def test_a_command_ignoring_sigterm_is_killed(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repro_module, "KILL_AFTER", 0.2)
    codes = run_in_thread("trap '' TERM; echo $$ > loop.pid; while :; do sleep 0.05; done",
                          tmp_path, Commands())
    assert codes == [-signal.SIGKILL]


def handlers() -> dict[int, object]:
    return {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}


@pytest.fixture
def one_stage(repo: CliRepo) -> CliRepo:
    repo.write("in.txt", "x")
    repo.write("dvc.yaml", "stages:\n  copy:\n    cmd: cp in.txt out.txt\n"
               "    deps: [in.txt]\n    outs: [out.txt]\n")
    return repo


def test_handlers_are_put_back_after_a_repro(one_stage: CliRepo) -> None:
    before = handlers()
    with open_project(one_stage.root) as project:
        assert [r.action for r in repro(project)] == ["ran"]
        assert handlers() == before
        (one_stage.root / "dvc.yaml").write_text("stages:\n  copy:\n    cmd: exit 3\n")
        with pytest.raises(repro_module.StageFailedError):
            repro(project)
    assert handlers() == before


def test_repro_runs_from_another_thread_without_handlers(one_stage: CliRepo) -> None:
    before = handlers()
    outcome: list[object] = []

    def work() -> None:
        with open_project(one_stage.root) as project:
            outcome.extend(r.action for r in repro(project, jobs=2))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=60)
    assert outcome == ["ran"]
    assert (one_stage.root / "out.txt").read_text() == "x"
    assert handlers() == before


def test_a_signal_inside_a_held_block_is_raised_at_its_end_once() -> None:
    """As while outs are set aside: raised where the block ends; a second is ignored."""
    commands = Commands()
    with repro_module.stopping_on_signals(commands), \
            pytest.raises(Interrupted) as raised, commands.held():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)  # the handler runs at the next bytecode; still in the block
        os.kill(os.getpid(), signal.SIGTERM)
        reached_the_end = True
    assert reached_the_end
    assert str(raised.value) == "interrupted by SIGTERM"
    assert raised.value.exit_code == 143
