"""`cairn repro`: run, in dependency order, only the stages whose inputs changed.

For each stage of the plan (`Graph.stages_to_run`), once its upstream stages are done:
frozen → skip; nothing changed against cairn.lock → skip; the run cache has its exact
inputs → restore the outs from the cache; else run its commands with ``sh -c`` in its
wdir, store its outs and record it in cairn.lock. Stages whose upstream stages are done
run in parallel with ``jobs > 1``; a failure stops new stages from starting.

Durability is paid once per repro, not once per stage: objects, run-cache entries and
the lock are written under temp names and renamed into place (so a killed repro leaves
every file whole), and one flush at the end makes them durable (docs/formats.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import posixpath
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.errors import CairnError, Interrupted, NotFoundError
from cairn.pipeline._changes import StageInputs, Workspace, reasons_to_run, stage_root
from cairn.pipeline.schema import Pipeline, Stage
from cairn.project.context import ProjectContext
from cairn.project.lockfile import LockedStage, LockFile, lock_path_for, read_lock
from cairn.project.tracked import TrackedPath

if TYPE_CHECKING:  # outputs (and the cache-writing code it needs) load when a stage runs
    from concurrent.futures import Future, ThreadPoolExecutor

    from cairn.objects.odb import ObjectDB
    from cairn.pipeline._outputs import SetAside
    from cairn.pipeline.runcache import RunEntry


@dataclass
class StageResult:
    stage: str
    action: str  # "ran", "skipped", "restored", "frozen", "would-run", "failed"
    reasons: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # files to commit to git afterwards

    @property
    def line(self) -> str:
        why = "; ".join(self.reasons)
        return {
            "ran": f"Running stage '{self.stage}': {why}",
            "failed": f"Running stage '{self.stage}': {why}",
            "skipped": f"Stage '{self.stage}' didn't change, skipping",
            "restored": f"Restored stage '{self.stage}' from the run cache",
            "frozen": f"Stage '{self.stage}' is frozen, skipping",
            "would-run": f"Would run stage '{self.stage}': {why}",
        }[self.action]

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "action": self.action, "reasons": self.reasons}


class StageFailedError(CairnError):
    """A stage's command failed; `results` says what happened to every stage before."""

    def __init__(self, message: str, results: list[StageResult]) -> None:
        super().__init__(message)
        self.results = results


Report = Callable[[StageResult], None]


def stages_to_run(project: ProjectContext) -> list[StageResult]:
    """The stages `cairn repro` would run now (none without a pipeline), as `dvc status`
    shows them."""
    from cairn.pipeline.schema import load_pipeline

    pipeline = load_pipeline(project.root)
    if not pipeline.stages:
        return []
    return [r for r in repro(project, dry=True, pipeline=pipeline) if r.action == "would-run"]


def repro(project: ProjectContext, targets: Sequence[str] = (), force: bool = False,
          dry: bool = False, downstream: bool = False, jobs: int = 1,
          report: Report | None = None, command_stdout: int | None = None,
          pipeline: Pipeline | None = None, pull: bool = False,
          remote: str | None = None) -> list[StageResult]:
    """Bring the pipeline up to date; `report` hears of each stage as it is decided (a
    running stage before its command starts). `command_stdout` redirects the commands'
    standard output (e.g. to stderr, under --json). `pull`: a stage about to run also
    looks for its run-cache entry on the remote (`remote`, else the default)."""
    from cairn.pipeline.graph import build_graph, cwd_base
    from cairn.pipeline.schema import PIPELINE_FILES, load_pipeline

    pipeline = pipeline or load_pipeline(project.root)
    if not pipeline.stages:
        where = f"{', '.join(pipeline.files)} declares no stages" if pipeline.files else \
            f"{project.root} has no cairn.yaml or dvc.yaml"
        raise NotFoundError(f"no stages to reproduce: {where}; add one with "
                            "`cairn stage add -n NAME … CMD`")
    graph = build_graph(pipeline, project.root, inside=project.paths)
    base = cwd_base(project.root)
    if not targets and base:  # as DVC: in a directory with a pipeline file, that pipeline
        targets = [n for n in PIPELINE_FILES if f"{base}/{n}" in pipeline.files]
    plan = graph.stages_to_run(list(targets), downstream, base)
    upstream = {s.name: {u.name for u in graph.upstream(s)} for s in plan}
    ws = Workspace(project)
    _check_params(ws, plan)
    if dry:
        return _Run(project, pipeline, plan, upstream, ws, force, True, 1, report,
                    command_stdout).go()
    run = _Run(project, pipeline, plan, upstream, ws, force, False, max(1, jobs), report,
               command_stdout)
    with stopping_on_signals(run.commands), project.lock():
        if (project.tmp_dir / "repro").exists():  # a repro was killed mid-stage
            from cairn.pipeline._outputs import put_back_leftovers

            put_back_leftovers(project)
        if pull:
            run.pull_from = _RemoteRuns(project, remote)
        with _durable_at_end(project, run, defer=not pull):
            return run.go()


# A command of plain words runs without a shell in between (one exec fewer per stage);
# anything a shell would interpret — quotes, $, globs, redirections, builtins — runs
# with `sh -c`, as DVC runs every command.
_PLAIN_WORDS = re.compile(r"[A-Za-z0-9_./@%+=:,-]+(?: +[A-Za-z0-9_./@%+=:,-]+)*")
_SHELL_WORDS = frozenset((
    ".", ":", "[", "alias", "bg", "break", "cd", "command", "continue", "echo", "eval", "exec",
    "exit", "export", "false", "fc", "fg", "getopts", "hash", "jobs", "kill", "local", "printf",
    "pwd", "read", "readonly", "return", "set", "shift", "test", "times", "trap", "true", "type",
    "ulimit", "umask", "unalias", "unset", "wait", "if", "then", "else", "elif", "fi", "for",
    "while", "until", "do", "done", "case", "esac", "in", "function", "select", "time",
))


def _self_and_parents(path: str) -> Iterator[str]:
    while path not in ("", "/", "."):
        yield path
        path = posixpath.dirname(path)


def run_command(cmd: str, cwd: Path, stdout: int | None,
                commands: Commands | None = None) -> int:
    """Run one stage command in `cwd` as `sh -c` would; its exit code (negative: killed
    by that signal). `commands`: the run's commands, which can stop it."""
    commands = commands or Commands()
    words = cmd.strip().split() if _PLAIN_WORDS.fullmatch(cmd.strip()) else []
    if words and words[0] not in _SHELL_WORDS and "=" not in words[0]:
        try:
            return commands.run(words, cwd, stdout)
        except (FileNotFoundError, PermissionError):
            pass  # let the shell say "not found" in its own words, with code 127
    return commands.run(["/bin/sh", "-c", cmd], cwd, stdout)


KILL_AFTER = 5.0  # seconds a stopped command has to exit after SIGTERM, before SIGKILL
_STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP")
                      if hasattr(signal, n))


class Commands:
    """The stage commands running now (several under -j) and what stops them.

    Each command runs in a process group of its own, so that stopping it stops what it
    started too (`a && b` under sh, a script's workers); the terminal's Ctrl-C therefore
    reaches only Cairn, which stops them. While `stopping_on_signals` is in force, the
    first SIGINT, SIGTERM or SIGHUP is raised in the main thread as Interrupted (later
    ones are ignored, so the clean-up is not cut short); inside `held()` it waits for the
    block's end, so that no command starts unregistered and no outs are half moved.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: list[subprocess.Popen[bytes]] = []
        self._stopping = False
        self.signum: int | None = None  # the signal that stops the run
        self._raised = False
        self._held = 0  # main thread only

    def run(self, argv: list[str], cwd: Path, stdout: int | None) -> int:
        proc = None
        try:
            with self.held(), self._lock:
                if self._stopping:
                    return -signal.SIGTERM  # as if stopped the moment it started
                proc = subprocess.Popen(argv, cwd=cwd, stdout=stdout, process_group=0)
                self._running.append(proc)
            return proc.wait()
        except BaseException:
            if proc is not None:  # interrupted in the main thread (no -j), or a bug
                self.stop()
            raise
        finally:
            if proc is not None:
                with self._lock:
                    self._running.remove(proc)

    def stop(self) -> None:
        """Start no more commands; SIGTERM each running one's process group (and SIGCONT,
        should it be stopped), SIGKILL what is left after KILL_AFTER seconds."""
        with self._lock:
            self._stopping = True
            procs = list(self._running)
        for proc in procs:
            _signal_group(proc, signal.SIGTERM)
            _signal_group(proc, signal.SIGCONT)
        deadline = time.monotonic() + KILL_AFTER
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
        for proc in procs:
            _signal_group(proc, signal.SIGKILL)  # and whatever it left in its group
            proc.wait()

    def on_signal(self, signum: int, frame: object) -> None:
        if self.signum is not None:
            return
        self.signum = signum
        if not self._held:
            raise self._interrupted()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """A stopping signal arriving in the block is raised at its end (main thread)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
        if not self._held and self.signum is not None and not self._raised:
            raise self._interrupted()

    def _interrupted(self) -> Interrupted:
        assert self.signum is not None
        self._raised = True
        return Interrupted(self.signum)


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(proc.pid, signum)


@contextlib.contextmanager
def stopping_on_signals(commands: Commands) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP stop the run as Ctrl-C does, for the duration of the
    block; the previous handlers come back after. Signal handlers belong to the main
    thread: from another one nothing is installed. An ignored signal stays ignored
    (`nohup cairn repro` survives the terminal's hangup)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for signum in _STOP_SIGNALS:
        handler = signal.getsignal(signum)
        if handler is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, commands.on_signal)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _check_params(ws: Workspace, plan: list[Stage]) -> None:
    """Unknown param keys are errors before anything runs (not when their stage comes
    up); params files that a stage of the plan writes are checked when it has run."""
    written = {o.path for s in plan for o in s.outs}
    for stage in plan:
        if all(ref.file not in written for ref in stage.params):
            ws.params(stage)


_Started = tuple[Stage, StageInputs, "SetAside"]


class _RemoteRuns:
    """The remote's run cache, opened when a stage first asks (repro --pull)."""

    def __init__(self, project: ProjectContext, remote: str | None) -> None:
        self.project, self.remote = project, remote
        self._store: ObjectDB | None = None

    def entry(self, key: str) -> RunEntry | None:
        from cairn.pipeline.runcache_remote import fetch_entry
        from cairn.remotes.connect import open_remote

        if self._store is None:
            self._store = open_remote(self.project.config, self.remote)
        return fetch_entry(self.project, self._store, key)


def _cached(stage: Stage, path: str) -> bool:
    return any(o.path == path and o.cache for o in stage.outs)


@dataclass(frozen=True)
class _Outcome:
    code: Callable[[], int]  # the exit code, or the exception running the command raised


@contextlib.contextmanager
def _durable_at_end(project: ProjectContext, run: _Run, defer: bool = True) -> Iterator[None]:
    """Objects stored by every stage share one flush (see the module docstring). With
    hardlink/symlink links the workspace points into the cache, and with --pull objects
    fetched for one stage are restored at once: each object must be in place when
    written, so no deferral then."""
    defer = defer and project.link_types[0] not in ("hardlink", "symlink")
    batch = project.odb.batch() if defer else contextlib.nullcontext()
    error: BaseException | None = None
    with batch:
        try:
            yield
        except BaseException as e:  # still flush what finished stages recorded
            error = e
    run.sync()
    if error is not None:
        raise error


class _Run:
    def __init__(self, project: ProjectContext, pipeline: Pipeline, plan: list[Stage],
                 upstream: dict[str, set[str]], ws: Workspace, force: bool, dry: bool,
                 jobs: int, report: Report | None, command_stdout: int | None) -> None:
        self.project, self.pipeline, self.plan = project, pipeline, plan
        self.planned = {s.name for s in plan}
        self.upstream = {name: ups & self.planned for name, ups in upstream.items()}
        self.force, self.dry, self.jobs = force, dry, jobs
        self.report, self.command_stdout = report, command_stdout
        self.ws = ws
        self.link_types = project.link_types  # reading the config is not free: once
        self.locks: dict[str, LockFile] = {}
        self.written: set[str] = set()
        self.results: dict[str, StageResult] = {}
        self.done: set[str] = set()  # decided, or finished running
        self.failures: list[str] = []
        self.failed_commands: dict[str, str] = {}  # set from worker threads: one key each
        self.pull_from: _RemoteRuns | None = None
        self.commands = Commands()

    # -- the schedule ------------------------------------------------------------------

    def go(self) -> list[StageResult]:
        if self.jobs > 1:
            self._go_parallel()
        else:
            for stage in self.plan:
                if self.failures:
                    break
                started = self._start(stage)
                if started is not None:
                    self._finish(*started, self._run_now(started))
        results = [self.results[s.name] for s in self.plan if s.name in self.results]
        if self.failures:
            raise StageFailedError("; ".join(self.failures), results)
        return results

    def _go_parallel(self) -> None:
        """Start every stage whose upstream stages are done, up to `jobs` commands at
        once; stop starting stages after a failure, but finish the running ones."""
        from concurrent.futures import ThreadPoolExecutor, wait

        todo = list(self.plan)
        running: dict[Future[int], _Started] = {}
        with ThreadPoolExecutor(self.jobs) as pool:
            try:
                self._schedule(todo, running, pool)
            except BaseException:  # a signal, or a bug: put the running stages' outs back
                self.commands.stop()  # first: the workers wait for their commands
                wait(running)
                for _, _, aside in running.values():
                    self._put_back(aside)
                raise

    def _schedule(self, todo: list[Stage], running: dict[Future[int], _Started],
                  pool: ThreadPoolExecutor) -> None:
        from concurrent.futures import FIRST_COMPLETED, wait

        while todo or running:
            ready = [] if self.failures else [s for s in todo
                                              if self.upstream[s.name] <= self.done]
            for stage in ready:
                todo.remove(stage)
                started = self._start(stage)
                if started is not None:
                    running[pool.submit(self._run_commands, started[0])] = started
            if not running:
                if self.failures or not ready:
                    return
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                started = running.pop(future)
                self._finish(*started, _Outcome(future.result))

    def _start(self, stage: Stage) -> _Started | None:
        """Decide about `stage`; if it must run, set its outs aside and return it."""
        result, inputs = self._decide(stage)
        if result is not None:
            self._emit(result)
            self.done.add(stage.name)
            return None
        from cairn.pipeline._outputs import SetAside

        with self.commands.held():  # all outs set aside, or none
            aside = SetAside(self.project, stage).__enter__()
        return stage, inputs, aside

    def _run_now(self, started: _Started) -> _Outcome:
        try:
            code = self._run_commands(started[0])
        except BaseException:
            self._put_back(started[2])
            raise
        return _Outcome(lambda: code)

    def _put_back(self, aside: SetAside) -> None:
        """The stage did not finish: what its command wrote goes, its old outs come back."""
        with self.commands.held():
            aside.restore()
            aside.__exit__()

    # -- deciding ----------------------------------------------------------------------

    def _decide(self, stage: Stage) -> tuple[StageResult | None, StageInputs]:
        """The result of a stage that does not run its command, or None if it must run
        (reported as running); and its inputs."""
        inputs = self.ws.inputs(stage) if not stage.frozen else StageInputs((), {})
        return self._decide_with(stage, inputs), inputs

    def _decide_with(self, stage: Stage, inputs: StageInputs) -> StageResult | None:
        if stage.frozen:
            return StageResult(stage.name, "frozen")
        locked = self._lock(stage).stages.get(stage.short_name)
        reasons = ["forced"] if self.force else reasons_to_run(stage, locked, inputs, self.ws)
        if not reasons and self.dry:
            reasons = self._upstream_would_run(stage)
        if not reasons:
            if locked is not None and not self.dry:
                self._commit_missing(stage, locked)
            return StageResult(stage.name, "skipped")
        if self.dry:
            return StageResult(stage.name, "would-run", reasons)
        missing = [rel for rel, now in zip(stage.deps, inputs.deps, strict=True) if now is None]
        if missing:
            self.failures.append(f"stage '{stage.name}' cannot run: its dep {missing[0]} does "
                                 f"not exist; {self._missing_hint(missing[0])}")
            return StageResult(stage.name, "failed", [f"dep {missing[0]} missing"])
        from cairn.pipeline import runcache

        if not self.force and runcache.cacheable(stage):
            restored = self._restore(stage, inputs)
            if restored is not None:
                return restored
        self._emit(StageResult(stage.name, "ran", reasons))
        return None

    def _missing_hint(self, dep: str) -> str:
        # Its producer exists but did not run: frozen, or left out by the targets.
        producer = next((s for s in self.pipeline.stages.values() for o in s.outs
                         if dep == o.path or dep.startswith(f"{o.path}/")
                         or o.path.startswith(f"{dep}/")), None)
        if producer is None:
            tracked = next((p for p in _self_and_parents(dep)
                            if (self.project.root / f"{p}.cairn").is_file()), None)
            if tracked is not None:
                return f"{tracked}.cairn tracks it; run `cairn pull {tracked}`"
            return "create it or add the stage that produces it"
        why = "is frozen; unfreeze it" if producer.frozen else "did not run; run it"
        return f"stage '{producer.name}' produces it but {why} (or create the file)"

    def _commit_missing(self, stage: Stage, locked: LockedStage) -> None:
        odb = self.project.odb
        if all(odb.exists(o.digest) for o in locked.outs if _cached(stage, o.path)):
            return
        from cairn.pipeline._outputs import commit_missing

        commit_missing(self.project, stage, locked.outs)

    def _upstream_would_run(self, stage: Stage) -> list[str]:
        # A dry run cannot know what an upstream stage would write: assume it changes.
        return [f"upstream stage '{u}' would run" for u in sorted(self.upstream[stage.name])
                if self.results[u].action == "would-run"]

    def _restore(self, stage: Stage, inputs: StageInputs) -> StageResult | None:
        from cairn.pipeline import runcache
        from cairn.pipeline._outputs import can_restore, restore_outs

        deps = tuple(d for d in inputs.deps if d is not None)
        key = runcache.run_key(runcache.stage_inputs(stage, deps, inputs.params))
        entry = runcache.lookup(self.project.odb.root, key)
        if (entry is None or not can_restore(self.project, entry.outs)) \
                and self.pull_from is not None:
            entry = self.pull_from.entry(key)
        if entry is None or [o.path for o in entry.outs] != [o.path for o in stage.outs] \
                or not can_restore(self.project, entry.outs):
            return None
        ignores: list[Path] = []
        restore_outs(self.project, stage, entry.outs, self.link_types, ignores)
        for out in entry.outs:
            self.ws.forget(out.path)
            self.ws.known(out)
        files = self._save_lock(stage, inputs, entry.outs, ignores)
        return StageResult(stage.name, "restored", files=files)

    # -- running -----------------------------------------------------------------------

    def _run_commands(self, stage: Stage) -> int:
        """Run the stage's commands in order (in a worker thread under -j); the exit code
        of the first that fails, or 0."""
        cwd = stage_root(self.project, stage)
        for cmd in stage.cmd:
            code = run_command(cmd, cwd, self.command_stdout, self.commands)
            if code != 0:
                self.failed_commands[stage.name] = cmd
                return code
        return 0

    def _finish(self, stage: Stage, inputs: StageInputs, aside: SetAside,
                outcome: _Outcome) -> None:
        from cairn.pipeline._outputs import missing_outs, store_outs

        recorded = False  # once the lock names the new outs, they stay
        try:
            code = outcome.code()
            missing = missing_outs(stage, self.project.root) if code == 0 else []
            if code != 0 or missing:
                self._put_back(aside)
                self._fail(stage, code, missing)
                return
            ignores: list[Path] = []
            outs = store_outs(self.project, stage, self.ws, self.link_types, ignores)
            with self.commands.held():
                files = self._save_lock(stage, inputs, outs, ignores)
                recorded = True
            from cairn.pipeline import runcache

            if runcache.cacheable(stage):
                deps = tuple(d for d in inputs.deps if d is not None)
                runcache.save(self.project.odb.root, runcache.RunEntry(
                    runcache.stage_inputs(stage, deps, inputs.params), outs))
            self.results[stage.name].files = files
        except BaseException:
            if not recorded:
                self._put_back(aside)
            raise
        finally:
            aside.__exit__()
            self.done.add(stage.name)

    def _fail(self, stage: Stage, code: int, missing: list[str]) -> None:
        self.results[stage.name].action = "failed"
        where = self._lock(stage).path
        if code != 0:
            what = f"`{self.failed_commands.get(stage.name, '')}` exited with code {code}"
        else:
            what = f"its command did not create out {missing[0]}"
        self.failures.append(f"stage '{stage.name}' failed: {what}; its outputs and {where} "
                             "were left as they were")

    # -- recording ---------------------------------------------------------------------

    def _emit(self, result: StageResult) -> None:
        self.results[result.stage] = result
        if self.report is not None:
            self.report(result)

    def _lock(self, stage: Stage) -> LockFile:
        rel = lock_path_for(stage.file)
        if rel not in self.locks:
            self.locks[rel] = read_lock(self.project.root, rel)
        return self.locks[rel]

    def _save_lock(self, stage: Stage, inputs: StageInputs, outs: tuple[TrackedPath, ...],
                   ignores: list[Path]) -> list[str]:
        """Record the stage in its lock file; return the files changed for git."""
        from cairn.project.lockfile import write_lock

        lock = self._lock(stage)
        deps = tuple(d for d in inputs.deps if d is not None)
        # `cache: false` recorded, so push/pull/checkout leave those outs to git
        outs = tuple(dataclasses.replace(o, cache=_cached(stage, o.path)) for o in outs)
        before = lock.stages.get(stage.short_name)
        entry = LockedStage(tuple(stage.cmd), deps, inputs.params, outs,
                            before.extra if before is not None else {})  # keys we don't know
        changed = [p.relative_to(self.project.root).as_posix() for p in ignores]
        if before == entry:
            return changed
        lock.stages[stage.short_name] = entry
        order = [s.short_name for s in self.pipeline.stages.values() if s.file == stage.file]
        write_lock(self.project.root, lock, order, durable=False)
        self.written.add(lock.path)
        return [lock.path, *changed]

    def sync(self) -> None:
        """Make the locks written this run durable (objects were flushed by the batch)."""
        from cairn.project.lockfile import sync_lock

        self.project.state.flush()
        with contextlib.suppress(OSError):  # gone, or holding outs after a Ctrl-C mishap
            (self.project.tmp_dir / "repro").rmdir()
        for rel in sorted(self.written):
            sync_lock(self.project.root / rel)


def lock_files_changed(results: Sequence[StageResult]) -> list[str]:
    """Files a user should `git add` after the run, each once."""
    return list(dict.fromkeys(f for r in results for f in r.files))
