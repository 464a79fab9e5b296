"""A crash loses at most the flush interval's metrics; after flush()/end_run(), nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cairn.store.open import open_store
from cairn.tracking.backend import DEFAULT_FLUSH_INTERVAL

CHILD = textwrap.dedent("""
    import os, signal, sys, time
    import cairn

    cairn.set_tracking_uri(sys.argv[1])
    mode, count, spacing = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    run = cairn.start_run()
    print(run.info.run_id, flush=True)
    for i in range(count):
        cairn.log_metric("m", float(i), step=i)
        if spacing:
            time.sleep(spacing)
    if mode == "flush":
        cairn.flush()
    elif mode == "end_run":
        cairn.end_run()
    os.kill(os.getpid(), signal.SIGKILL)  # right after the last call returned
""")


def crash_after_logging(tmp_path: Path, mode: str, count: int, spacing: float) -> list[int]:
    """Steps of metric `m` on disk after the child is killed."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    uri = f"sqlite:///{tmp_path / 'cairn.db'}"
    proc = subprocess.run([sys.executable, str(script), uri, mode, str(count), str(spacing)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    run_id = proc.stdout.split()[0]
    store = open_store(uri)
    try:
        return [m.step for m in store.get_metric_history(run_id, "m")]
    finally:
        store.close()


@pytest.mark.slow
def test_a_kill_loses_at_most_the_flush_interval(tmp_path: Path) -> None:
    spacing, count = 0.02, 150  # three seconds of logging
    steps = crash_after_logging(tmp_path, "none", count, spacing)
    at_risk = int((DEFAULT_FLUSH_INTERVAL + 0.5) / spacing)  # the interval, plus slack
    assert steps == list(range(len(steps)))  # a prefix, in order
    assert len(steps) >= count - at_risk


def test_nothing_is_lost_after_flush(tmp_path: Path) -> None:
    assert crash_after_logging(tmp_path, "flush", 5000, 0) == list(range(5000))


def test_nothing_is_lost_after_end_run(tmp_path: Path) -> None:
    assert crash_after_logging(tmp_path, "end_run", 2000, 0) == list(range(2000))


def test_a_normal_exit_ends_the_open_run_with_every_metric(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text("import sys, cairn\ncairn.set_tracking_uri(sys.argv[1])\n"
                      "for i in range(300):\n    cairn.log_metric('m', i, step=i)\n"
                      "print(cairn.active_run().info.run_id)\n")
    uri = f"sqlite:///{tmp_path / 'cairn.db'}"
    proc = subprocess.run([sys.executable, str(script), uri], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=True)
    store = open_store(uri)
    try:
        run_id = proc.stdout.split()[0]
        assert store.get_run(run_id).info.status == "FINISHED"
        assert len(store.get_metric_history(run_id, "m")) == 300
    finally:
        store.close()


def test_a_forked_child_logs_its_own_run(tmp_path: Path) -> None:
    script = tmp_path / "fork.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing, sys, cairn
        cairn.set_tracking_uri(sys.argv[1])

        def child():
            with cairn.start_run() as run:
                cairn.log_metric("child", 1.0)
            print("child", run.info.run_id, flush=True)

        with cairn.start_run() as parent:
            cairn.log_metric("parent", 1.0)
            p = multiprocessing.get_context("fork").Process(target=child)
            p.start(); p.join()
            assert p.exitcode == 0
        print("parent", parent.info.run_id, flush=True)
    """))
    uri = f"sqlite:///{tmp_path / 'cairn.db'}"
    out = subprocess.run([sys.executable, str(script), uri], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    ids = dict(line.split() for line in out.splitlines())
    store = open_store(uri)
    try:
        assert store.get_run(ids["parent"]).data.metrics == {"parent": 1.0}
        assert store.get_run(ids["child"]).data.metrics == {"child": 1.0}
        assert store.get_run(ids["child"]).info.status == "FINISHED"
    finally:
        store.close()
