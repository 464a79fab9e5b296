"""`cairn reproduce`: rebuild a registered model version from its lineage and compare.

From the version's lineage (`cairn.registry.lineage.model_lineage`):

1. the recorded git commit is checked out in a scratch worktree (`git worktree add
   --detach` in a temp dir, git hooks off); a run made with uncommitted changes is
   rebuilt only when its diff is recoverable — stored as an object (cache or remote),
   or exactly the outs `cairn repro` set aside while the stage ran (checked against the
   recorded diff digest);
2. the recorded data is placed there by digest, from the cache, else fetched into it
   from the remotes (default first); outs the rebuild rewrites are not needed;
3. the pipeline stage that made the model runs, forced with its upstream stages
   (`cairn repro --force STAGE`) — the stage the lineage names, else the one whose
   command runs the recorded entry point — or, without a pipeline, the entry point with
   its recorded arguments. It runs with `CAIRN_TRACKING_URI` and `cache.dir` inside the
   scratch dir, so its runs and registrations never reach the user's database;
4. the rebuilt artifact (the version it registered, else the stage's out) is compared
   by digest with the recorded one, and, when they differ, the run's metrics.

The user's workspace and git index are never written; git's worktree bookkeeping is
pruned afterwards unless `keep`. Every outcome, failures included, is one audit row
(`cairn.registry.reproduction`).
"""

from __future__ import annotations

import math
import os
import posixpath
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from cairn.errors import CairnError, NotARepositoryError, UserError
from cairn.identity import current_user
from cairn.lifecycle import _scratch as sandbox
from cairn.objects.hashing import hash_bytes
from cairn.objects.odb import ObjectDB
from cairn.paths import Root
from cairn.project.context import DOT_DIR, ProjectContext
from cairn.registry import reproduction
from cairn.registry.lineage import model_lineage
from cairn.store.base import MetadataStore

if TYPE_CHECKING:
    from cairn.pipeline.schema import Pipeline, Stage

SCRATCH_PREFIX = "cairn-reproduce-"
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")

Say = Callable[[str], None]


class CannotReproduce(CairnError):
    """The version cannot be rebuilt: no commit, an unrecoverable diff, missing data, no
    stage or entry point, or the rebuild itself failed."""


@dataclass(frozen=True)
class MetricDelta:
    metric: str
    recorded: float | None  # None: the run did not log it
    rebuilt: float | None

    @property
    def delta(self) -> float | None:
        if self.recorded is None or self.rebuilt is None:
            return None
        if self.recorded == self.rebuilt:
            return 0.0  # also for equal infinities
        return self.rebuilt - self.recorded

    def within(self, tolerance: float) -> bool:
        delta = self.delta
        return delta is not None and not math.isnan(delta) and abs(delta) <= tolerance


@dataclass
class Reproduction:
    """What one `cairn reproduce` found (status: one of reproduction.STATUSES)."""

    uri: str
    name: str
    version: int
    status: str
    reason: str  # one line, as recorded in the audit log
    commit: str
    stage: str | None  # the pipeline stage rerun, or None: the entry point was
    command: list[str]  # what ran in the scratch worktree
    recorded_digest: str
    rebuilt_digest: str
    deltas: list[MetricDelta] = field(default_factory=list)
    tolerance: float | None = None
    differing_files: list[str] = field(default_factory=list)  # inside a directory artifact
    kept: str | None = None  # the scratch worktree, when kept

    @property
    def passed(self) -> bool:
        return self.status in reproduction.PASSING

    @property
    def shown_command(self) -> str:
        return _shown(self.command)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["deltas"] = [{**asdict(d), "delta": d.delta} for d in self.deltas]
        out["passed"] = self.passed
        return out


def reproduce(project: ProjectContext, store: MetadataStore, lineage_odb: ObjectDB, uri: str,
              *, keep: bool = False, tolerance: float | None = None, say: Say | None = None,
              command_stdout: int | None = None) -> Reproduction:
    """Rebuild the version `uri` names in a scratch worktree and compare (see the module
    docstring); the outcome is recorded in its audit log. CannotReproduce (recorded as
    "failed") when it cannot be rebuilt. `lineage_odb`: where the tracking store's
    objects are; `command_stdout`: where the rebuild's output goes (e.g. 2: stderr)."""
    if tolerance is not None and not tolerance >= 0:
        raise UserError(f"--metric-tolerance must be a number >= 0, not {tolerance}")
    chain = model_lineage(store, lineage_odb, uri, project.root)
    model = chain["model"]
    if model is None:
        raise UserError(f"{uri} is not a registered model version; reproduce takes "
                        "models:/NAME/VERSION (or models:/NAME@ALIAS, models:/NAME/STAGE)")
    attempt = _Attempt(project, chain, keep, tolerance, say or (lambda _: None),
                       command_stdout)
    try:
        result = attempt.run()
    except CairnError as e:
        reproduction.record(store, model["name"], model["version"], reproduction.FAILED,
                            str(e), attempt.details(reproduction.FAILED, error=str(e)),
                            current_user())
        raise
    reproduction.record(store, result.name, result.version, result.status, result.reason,
                        attempt.details(result.status, result=result), current_user())
    return result


@dataclass
class _Plan:
    """How the version is rebuilt in the scratch project."""

    argv: list[str]
    stage: Stage | None = None  # run with `cairn repro --force`, its upstream stages too
    rewritten: set[str] = field(default_factory=set)  # outs the rebuild writes anew
    set_aside: list[str] = field(default_factory=list)  # outs repro moves while it runs
    out: str | None = None  # the lineage's stage out holding the model


class _Attempt:
    def __init__(self, project: ProjectContext, chain: dict[str, Any], keep: bool,
                 tolerance: float | None, say: Say, command_stdout: int | None) -> None:
        self.project, self.chain, self.keep, self.tolerance = project, chain, keep, tolerance
        self.say, self.command_stdout = say, command_stdout
        self.name: str = chain["model"]["name"]
        self.version: int = chain["model"]["version"]
        self.label = f"{self.name} v{self.version}"
        self.commit: str = chain["git"]["commit"] or ""
        self.plan: _Plan | None = None
        self.scratch: Path | None = None
        self.remotes: dict[str, ObjectDB | None] = {}  # opened once; None: unreachable
        self.remote_problems: list[str] = []

    def details(self, status: str, result: Reproduction | None = None,
                error: str | None = None) -> dict[str, object]:
        found: dict[str, object] = {
            "uri": self.chain["uri"], "status": status, "commit": self.commit or None,
            "stage": self.plan.stage.name if self.plan and self.plan.stage else None,
            "command": self.plan.argv if self.plan else None,
            "recorded_digest": self.chain["digest"], "tolerance": self.tolerance}
        if result is not None:
            found.update({"recorded_digest": result.recorded_digest,
                          "rebuilt_digest": result.rebuilt_digest,
                          "deltas": result.to_dict()["deltas"],
                          "differing_files": result.differing_files})
        if error is not None:
            found["error"] = error
        return found

    # -- the steps ---------------------------------------------------------------------

    def run(self) -> Reproduction:
        git_root = self._check_commit()
        self.scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
        work = self.scratch / "work"
        try:
            root = self._checkout(git_root, work)
            self.plan = self._plan_for(root)
            self._check_clean(work, root, self.plan)
            self._materialise(root, self.plan)
            self._rebuild(root, self.plan)
            result = self._compare(root, self.plan)
        finally:
            if self.keep:
                self.say(f"Kept the scratch worktree {work}; remove it with "
                         f"`git worktree remove --force {shlex.quote(str(work))}`")
            else:
                sandbox.remove_worktree(git_root, work, self.scratch)
        if self.keep:
            result.kept = str(work)
        return result

    def _check_commit(self) -> Path:
        if not self.commit:
            raise CannotReproduce(f"{self.label} records no git commit (its run was not made "
                                  "in a git work tree with a commit); nothing to check out")
        if not _COMMIT.fullmatch(self.commit):
            raise CannotReproduce(f"{self.label} records a malformed git commit "
                                  f"{self.commit[:80]!r}; nothing to check out")
        git_root = self.project.git_root
        if git_root is None:
            raise NotARepositoryError(f"{self.project.root} is not in a git repository; "
                                      "reproduce checks out the recorded commit from it")
        found = sandbox.git(git_root, "cat-file", "-e", f"{self.commit}^{{commit}}",
                            check=False)
        if found.returncode != 0:
            raise CannotReproduce(f"commit {self.commit} of {self.label} is not in the "
                                  f"repository at {git_root}; fetch it (`git fetch --all`) "
                                  "and rerun")
        return git_root

    def _checkout(self, git_root: Path, work: Path) -> Path:
        self.say(f"Checking out {self.commit[:12]} in {work}")
        done = sandbox.git(git_root, *sandbox.NO_HOOKS, "worktree", "add", "--detach",
                           "--quiet", str(work), self.commit, check=False)
        if done.returncode != 0:
            raise CannotReproduce(f"git worktree add of {self.commit[:12]} failed: "
                                  f"{sandbox.last_line(done.stderr)}")
        return work / os.path.relpath(os.path.realpath(self.project.root),
                                      os.path.realpath(git_root))

    def _plan_for(self, root: Path) -> _Plan:
        pipeline = _pipeline_at(root)
        recorded = self.chain["pipeline_stage"]
        env = self.chain["environment"]
        entry = env.get("source.entry_point")
        stage = None
        if recorded:
            stage = _stage_named(pipeline, recorded["stage"])
            if stage is None:
                raise CannotReproduce(f"stage {recorded['stage']!r}, which made {self.label}, "
                                      f"is not in the pipeline at commit {self.commit[:12]}")
        elif isinstance(entry, str):
            stage = _stage_running(pipeline, entry, env.get("source.argv"))
        if stage is not None:
            return self._stage_plan(root, pipeline, stage, recorded["out"] if recorded else None)
        script = _usable_script(root, entry)
        if script is None:
            why = (f"its entry point {entry!r} is not a script in the project at that commit"
                   if isinstance(entry, str) else "no entry point either")
            raise CannotReproduce(f"{self.label} records no pipeline stage that made it and "
                                  f"{why}; nothing to rerun")
        argv = env.get("source.argv")
        args = [str(a) for a in argv[1:]] if isinstance(argv, list) else []
        return _Plan([sys.executable, script, *args])

    def _stage_plan(self, root: Path, pipeline: Pipeline, stage: Stage,
                    out: str | None) -> _Plan:
        from cairn.pipeline.graph import build_graph

        if not (root / DOT_DIR / "config.toml").is_file():
            raise CannotReproduce(f"commit {self.commit[:12]} has no {DOT_DIR}/config.toml "
                                  "(Cairn was not initialised there); cannot run its pipeline")
        planned = build_graph(pipeline, root, check_missing=False).stages_to_run([stage.name])
        rewritten = {o.path for s in planned if not s.frozen for o in s.outs}
        set_aside = [o.path for o in stage.outs if not o.persist]
        argv = [sys.executable, "-m", "cairn", "repro", "--force", "--", stage.name]
        return _Plan(argv, stage, rewritten, set_aside, out)

    def _check_clean(self, work: Path, root: Path, plan: _Plan) -> None:
        """A run made with uncommitted changes: recover them, or refuse."""
        git = self.chain["git"]
        if not git["dirty"]:
            return
        digest = git["diff_digest"]
        if not isinstance(digest, str) or not digest:
            raise CannotReproduce(f"{self.label} was trained with uncommitted changes on "
                                  f"{self.commit[:12]} and no diff digest was recorded; "
                                  "commit before training to make a version reproducible")
        if plan.stage is not None and self._only_set_aside(root, plan.set_aside, digest):
            return  # the dirt was the stage's own outs, moved away while it ran
        if not self._available(digest):
            raise CannotReproduce(
                f"{self.label} was trained with uncommitted changes on {self.commit[:12]} "
                f"(git diff {digest[:12]}) that are stored in neither the cache nor a remote; "
                "commit before training to make a version reproducible")
        patch = self.project.odb.read_bytes(digest)
        applied = sandbox.git(work, *sandbox.NO_HOOKS, "apply", "--binary",
                              "--whitespace=nowarn", "-", input=patch, check=False)
        if applied.returncode != 0:
            raise CannotReproduce(f"the uncommitted changes of {self.label} (git diff "
                                  f"{digest[:12]}) do not apply to {self.commit[:12]}: "
                                  f"{sandbox.last_line(applied.stderr)}")

    def _only_set_aside(self, root: Path, outs: list[str], digest: str) -> bool:
        """Whether the recorded diff is exactly `outs` missing from the commit: `cairn
        repro` moves a stage's outs away while its command runs, so a run inside a stage
        with git-tracked outs (metrics.json) sees them deleted."""
        assert self.scratch is not None
        aside = self.scratch / "aside"
        aside.mkdir(exist_ok=True)
        moved = []
        inside = Root(root)
        try:
            for rel in outs:
                path = inside.check(rel, where="the pipeline", what="out")
                if os.path.lexists(path):
                    os.replace(path, aside / quote(rel, safe=""))
                    moved.append((path, aside / quote(rel, safe="")))
            diff = sandbox.git(root, "diff", "HEAD", "--binary", check=False)
            return diff.returncode == 0 and hash_bytes(diff.stdout) == digest
        finally:
            for path, kept in moved:
                os.replace(kept, path)

    def _materialise(self, root: Path, plan: _Plan) -> None:
        """Place the recorded data by digest: git brought the files it tracks, the rebuild
        writes the outs it reruns; the rest comes from the cache (or a remote)."""
        inside = Root(root)
        odb = self.project.odb
        for rel, digest in sorted(self.chain["data"].items()):
            if not isinstance(rel, str) or not isinstance(digest, str) \
                    or _under(rel, plan.rewritten):
                continue
            dest = inside.check(rel, where=f"the lineage of {self.label}", what="data path")
            if os.path.lexists(dest):
                continue
            if not self._available(digest):
                where = ", ".join(self.remotes) if self.remotes else "no remote is configured"
                problems = f" ({'; '.join(self.remote_problems)})" if self.remote_problems else ""
                raise CannotReproduce(
                    f"data {rel} (digest {digest}) of {self.label} is in neither the cache nor "
                    f"any remote ({where}){problems}; push it from a clone that has it "
                    "(`cairn push`) and rerun")
            self.say(f"Placing {rel} ({digest[:12]})")
            sandbox.place(odb, inside, rel, digest)

    def _rebuild(self, root: Path, plan: _Plan) -> None:
        assert self.scratch is not None
        from cairn.store.open import ENV_URI

        env = {**os.environ, ENV_URI: str(self.scratch / "tracking.db"),
               "CAIRN_CACHE__DIR": str(self.scratch / "cache")}
        created = self._recorded_build_time()
        if created is not None:  # the saved model then carries the recorded time
            env["SOURCE_DATE_EPOCH"] = str(created)
        shown = _shown(plan.argv)
        self.say(f"Running `{shown}` in {root}")
        try:
            proc = subprocess.run(plan.argv, cwd=root, env=env, stdin=subprocess.DEVNULL,
                                  stdout=self.command_stdout, check=False)
        except OSError as e:
            raise CannotReproduce(f"could not run `{shown}`: {e}") from None
        if proc.returncode != 0:
            hint = "see its output above" + ("" if self.keep else
                                             "; rerun with --keep to inspect the scratch tree")
            raise CannotReproduce(f"the rebuild of {self.label} failed: `{shown}` exited "
                                  f"with code {proc.returncode}; {hint}")

    def _recorded_build_time(self) -> int | None:
        """When the recorded model was saved (its cairn-model.yaml `created`), in epoch
        seconds; None when the model is not in the cache or says nothing."""
        from datetime import UTC, datetime

        import yaml

        from cairn import yamlfile
        from cairn.flavors.base import MODEL_FILE
        from cairn.objects.tree import read_tree

        odb = self.project.odb
        try:
            entries = {e.name: e for e in read_tree(odb, self.chain["digest"])}
            meta = yamlfile.safe_load(odb.read_bytes(entries[MODEL_FILE].digest))
            when = datetime.strptime(str(meta["created"]), "%Y-%m-%dT%H:%M:%SZ")
        except (CairnError, KeyError, TypeError, ValueError, yaml.YAMLError):
            return None
        return int(when.replace(tzinfo=UTC).timestamp())

    def _compare(self, root: Path, plan: _Plan) -> Reproduction:
        assert self.scratch is not None
        rebuilt_odb = ObjectDB.local(self.scratch / "cache")
        recorded_digest: str = self.chain["digest"]
        with sandbox.scratch_store(self.scratch / "tracking.db") as tracked:
            version = sandbox.newest_version(tracked, self.name) if tracked else None
            run = sandbox.rebuilt_run(tracked, version) if tracked else None
            rebuilt = version.digest if version is not None else None
            if rebuilt is None and plan.out is not None:
                rebuilt = sandbox.locked_out(root, plan.out)
                recorded_digest = self.chain["data"].get(plan.out, recorded_digest)
            if rebuilt is None and tracked is not None and run is not None:
                rebuilt = sandbox.artifact_digest(tracked, run, self.chain["model"]["source"])
        if rebuilt is None:
            raise CannotReproduce(f"the rebuild of {self.label} ran but registered no "
                                  f"version of {self.name!r} and produced no artifact to "
                                  "compare")
        deltas = _deltas(self.chain["metrics"], dict(run.data.metrics) if run else {})
        status = self._status(recorded_digest, rebuilt, deltas)
        differing = [] if rebuilt == recorded_digest else \
            sandbox.differing_files(self.project.odb, recorded_digest, rebuilt_odb, rebuilt)
        assert self.plan is not None
        return Reproduction(
            self.chain["uri"], self.name, self.version, status,
            self._reason(status, recorded_digest, rebuilt, deltas), self.commit,
            plan.stage.name if plan.stage else None, plan.argv, recorded_digest, rebuilt,
            deltas, self.tolerance, differing)

    def _status(self, recorded: str, rebuilt: str, deltas: list[MetricDelta]) -> str:
        if recorded == rebuilt:
            return reproduction.MATCH
        if self.tolerance is not None and deltas and all(d.within(self.tolerance)
                                                         for d in deltas):
            return reproduction.WITHIN_TOLERANCE
        return reproduction.MISMATCH

    def _reason(self, status: str, recorded: str, rebuilt: str,
                deltas: list[MetricDelta]) -> str:
        assert self.plan is not None
        how = f"stage {self.plan.stage.name!r}" if self.plan.stage else \
            f"`{_shown(self.plan.argv[1:])}`"
        start = f"rebuilt {self.label} from {self.commit[:12]} by {how}"
        if status == reproduction.MATCH:
            return f"{start}: same digest {rebuilt[:12]}"
        bytes_differ = f"{start}: digest {rebuilt[:12]}, recorded {recorded[:12]}"
        if not deltas:
            return f"{bytes_differ}; no metrics to compare"
        if status == reproduction.WITHIN_TOLERANCE:
            return f"{bytes_differ}; all {len(deltas)} metrics within {self.tolerance:g}"
        if self.tolerance is None:
            shown = ", ".join(f"{d.metric} {_signed(d.delta)}" for d in deltas[:5])
            return f"{bytes_differ}; metric deltas (no tolerance given): {shown}"
        off = [d for d in deltas if not d.within(self.tolerance)]
        shown = ", ".join(f"{d.metric} {_signed(d.delta)}" for d in off[:5])
        return f"{bytes_differ}; metrics beyond {self.tolerance:g}: {shown}"

    # -- objects -----------------------------------------------------------------------

    def _available(self, digest: str) -> bool:
        """Whether `digest` (all of it, for a directory) is in the cache, fetching it
        from the remotes (default first) when it is not."""
        odb = self.project.odb
        if sandbox.complete(odb, digest):
            return True
        for name in self._remote_names():
            store = self._remote(name)
            if store is None:
                continue
            try:
                self._fetch(store, digest)
            except CairnError as e:
                self.remote_problems.append(f"{name}: {e}")
                continue
            if sandbox.complete(odb, digest):
                return True
        return False

    def _fetch(self, store: ObjectDB, digest: str) -> None:
        from cairn.objects.transfer import transfer, transfer_trees

        odb = self.project.odb
        with self.project.lock():
            transfer(store, odb, [digest])
            if odb.exists(digest) and sandbox.is_tree(odb, digest):
                transfer_trees(store, odb, [(digest, True)])

    def _remote_names(self) -> list[str]:
        config = self.project.config
        default = config.get("core.remote")
        names = sorted(config.remotes())
        return ([default] if default in names else []) + [n for n in names if n != default]

    def _remote(self, name: str) -> ObjectDB | None:
        if name not in self.remotes:
            from cairn.remotes.connect import open_remote

            try:
                self.remotes[name] = open_remote(self.project.config, name)
            except CairnError as e:
                self.remotes[name] = None
                self.remote_problems.append(f"{name}: {e}")
        return self.remotes[name]


# -- helpers -----------------------------------------------------------------------------

def _shown(argv: list[str]) -> str:
    words = ["python" if a == sys.executable else a for a in argv]
    if words[1:3] == ["-m", "cairn"]:
        words = ["cairn", *words[3:]]
    return shlex.join(words)


def _signed(value: float | None) -> str:
    return "missing" if value is None else f"{value:+.6g}"


def _pipeline_at(root: Path) -> Pipeline:
    from cairn.pipeline.schema import load_pipeline

    return load_pipeline(root)


def _stage_named(pipeline: Pipeline, name: str) -> Stage | None:
    return pipeline.stages.get(name) or next(
        (s for s in pipeline.stages.values() if s.short_name == name and s.file in (
            "cairn.yaml", "dvc.yaml")), None)


def _stage_running(pipeline: Pipeline, entry_point: str, argv: object) -> Stage | None:
    """The stage whose command runs the script `entry_point` (root-relative): the one
    giving it the recorded arguments too, or the only one running it at all."""
    args = [str(a) for a in argv[1:]] if isinstance(argv, list) else None
    running, exact = [], []
    for stage in pipeline.stages.values():
        for cmd in stage.cmd:
            try:
                words = shlex.split(cmd)
            except ValueError:
                continue
            at = [i for i, w in enumerate(words)
                  if posixpath.normpath(posixpath.join(stage.wdir, w)) == entry_point]
            if at:
                running.append(stage)
                if args is not None and words[at[0] + 1:] == args:
                    exact.append(stage)
                break
    if len(exact) == 1:
        return exact[0]
    return running[0] if len(running) == 1 else None


def _usable_script(root: Path, entry: object) -> str | None:
    """The recorded entry point as a script inside the scratch project, if it is one."""
    from cairn.paths import problem

    if not isinstance(entry, str) or problem(entry) is not None:
        return None  # "<interactive>", "-c", or a path outside the project
    try:
        path = Root(root).check(entry)
    except CairnError:
        return None
    return entry if path.is_file() else None


def _under(path: str, outs: set[str]) -> bool:
    return any(path == out or path.startswith(f"{out}/") for out in outs)


def _deltas(recorded: dict[str, float], rebuilt: dict[str, float]) -> list[MetricDelta]:
    return [MetricDelta(k, recorded.get(k), rebuilt.get(k))
            for k in sorted(set(recorded) | set(rebuilt))]
