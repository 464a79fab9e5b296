"""A signal to the `cairn repro` process alone (a process manager's SIGTERM, a hangup,
`kill -INT PID`) stops the stage commands it started and puts their outputs back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import CliRepo
from tests.processes import alive, pid_in, wait_for

# The command's shell and a subshell it leaves in the background (what `a && b` or a
# script's workers are) both write their pids; the subshell keeps touching a marker.
SLOW = ("echo partial > {out} && "
        "(while :; do date +%s%N > {name}.marker; sleep 0.05; done) & "
        "echo $! > {name}.loop.pid; echo $$ > {name}.sh.pid; wait")
STAGE = "  {name}:\n    cmd: {cmd}\n    deps: [in.txt]\n    outs: [{out}]\n"


def pipeline(repo: CliRepo, names: list[str], slow: bool) -> None:
    stages = "".join(STAGE.format(
        name=n, out=f"{n}.out",
        cmd=SLOW.format(out=f"{n}.out", name=n) if slow else f"echo v1 {n} > {n}.out")
        for n in names)
    repo.write("dvc.yaml", "stages:\n" + stages)


def start_repro(repo: CliRepo, *args: str) -> subprocess.Popen[str]:
    # A session of its own: the signal reaches cairn only, never the test's terminal.
    return subprocess.Popen([sys.executable, "-m", "cairn", "repro", *args], cwd=repo.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


SIGNALS = [("SIGTERM", 143), ("SIGHUP", 129), ("SIGINT", 130)]


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize(("name", "code"), SIGNALS)
def test_a_signal_to_cairn_stops_the_commands_and_puts_the_outputs_back(
        repo: CliRepo, name: str, code: int, jobs: str) -> None:
    stages = ["a", "b"] if jobs == "2" else ["a"]
    repo.write("in.txt", "x")
    pipeline(repo, stages, slow=False)
    repo.cairn("repro")
    lock = (repo.root / "cairn.lock").read_bytes()
    pipeline(repo, stages, slow=True)

    proc = start_repro(repo, "-j", jobs)
    pids: list[int] = []
    for n in stages:  # every stage's command runs (both at once under -j 2)
        for kind in ("sh", "loop"):
            wait_for(lambda: pid_in(repo.root / f"{n}.{kind}.pid") is not None  # noqa: B023
                     or proc.poll() is not None)
            pid = pid_in(repo.root / f"{n}.{kind}.pid")
            assert pid is not None, proc.communicate()
            pids.append(pid)
    os.kill(proc.pid, getattr(signal, name))
    _, err = proc.communicate(timeout=60)

    assert proc.returncode == code, err
    assert f"interrupted by {name}" in err
    wait_for(lambda: not any(alive(p) for p in pids))
    markers = {n: (repo.root / f"{n}.marker").read_bytes() for n in stages}
    time.sleep(0.3)
    assert {n: (repo.root / f"{n}.marker").read_bytes() for n in stages} == markers
    for n in stages:
        assert (repo.root / f"{n}.out").read_bytes() == f"v1 {n}\n".encode()
    assert (repo.root / "cairn.lock").read_bytes() == lock
    assert not (repo.root / ".cairn" / "tmp" / "repro").exists()


def test_an_ignored_hangup_stays_ignored(repo: CliRepo) -> None:
    """`nohup cairn repro` goes on when the terminal hangs up."""
    repo.write("in.txt", "x")
    repo.write("dvc.yaml", "stages:\n  wait:\n    cmd: touch started; while [ ! -e go ]; "
               "do sleep 0.02; done; echo done > out.txt\n    deps: [in.txt]\n"
               "    outs: [out.txt]\n")
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # inherited by the child
    try:
        proc = start_repro(repo)
    finally:
        signal.signal(signal.SIGHUP, previous)
    wait_for(lambda: (repo.root / "started").exists() or proc.poll() is not None)
    os.kill(proc.pid, signal.SIGHUP)
    (repo.root / "go").touch()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert (repo.root / "out.txt").read_text() == "done\n"
