"""The pipeline operations: repro, stage add and list, dag, and comparing revisions
(params diff, metrics show and diff, plots diff) — as the CLI and the server call them.

Nothing is printed: each returns a result object. Comparisons read the repository at
`root` (default: the working directory's), which may be a plain git repository holding
DVC's files; the others open the Cairn project at `root`. The project
is opened inside each function: `cairn metrics diff` must not pay for importing the data
commands (it is benchmarked against DVC's).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cairn.pipeline.compare import Change, Revisions
    from cairn.pipeline.graph import Graph
    from cairn.pipeline.metrics import Metrics, RevisionMetrics
    from cairn.pipeline.repro import StageFailedError, StageResult
    from cairn.pipeline.schema import Stage
    from cairn.pipeline.stage_add import StageAdded


# -- running the pipeline -----------------------------------------------------------------

@dataclass
class ReproResult:
    stages: list[StageResult]  # what happened to each stage of the plan that was decided
    lock_files: list[Path]  # files to `git add` afterwards (cairn.lock, .gitignore …)
    in_git: bool  # the project is in a git work tree
    failure: StageFailedError | None = None  # a stage failed: none started after that

    def raise_for_failure(self) -> None:
        if self.failure is not None:
            raise self.failure


def repro(stages: Sequence[str] = (), *, force: bool = False, dry: bool = False,
          downstream: bool = False, jobs: int = 1, pull: bool = False,
          remote: str | None = None, root: Path | None = None,
          report: Callable[[StageResult], None] | None = None,
          command_stdout: int | None = None) -> ReproResult:
    """Run, in dependency order, only the stages whose cmd, deps, params or outs changed
    (all of them with `force`; with `dry`, only say which would run). `report` hears of
    each stage as it is decided; `command_stdout` redirects the commands' output (e.g. 2:
    to stderr). A failed stage is in the result (`raise_for_failure`), with what happened
    before it."""
    from cairn.commands._context import opened
    from cairn.pipeline.repro import StageFailedError, lock_files_changed
    from cairn.pipeline.repro import repro as do_repro

    failure = None
    with opened(root) as project:
        try:
            results = do_repro(project, stages, force, dry, downstream, jobs, report=report,
                               command_stdout=command_stdout, pull=pull, remote=remote)
        except StageFailedError as e:
            results, failure = e.results, e
        return ReproResult(results, [project.root / f for f in lock_files_changed(results)],
                           project.git_root is not None, failure)


# -- defining the pipeline ----------------------------------------------------------------

def stage_add(name: str, cmd: Sequence[str], *, deps: Sequence[str] = (),
              outs: Sequence[str] = (), outs_no_cache: Sequence[str] = (),
              outs_persist: Sequence[str] = (), params: Sequence[str] = (),
              metrics: Sequence[str] = (), metrics_no_cache: Sequence[str] = (),
              plots: Sequence[str] = (), plots_no_cache: Sequence[str] = (),
              wdir: str | None = None, always_changed: bool = False, desc: str | None = None,
              force: bool = False, directory: Path | None = None,
              root: Path | None = None) -> StageAdded:
    """Add stage `name` running `cmd` to the pipeline file of `directory` (default: the
    working directory), or with `force` replace the stage of that name; paths are
    relative to the stage's wdir, as in the file."""
    from cairn.commands._context import opened
    from cairn.pipeline.stage_add import StageSpec, add_stage

    spec = StageSpec(name, cmd, deps, outs, outs_no_cache, outs_persist, params, metrics,
                     metrics_no_cache, plots, plots_no_cache, wdir, always_changed, desc)
    with opened(root) as project:
        return add_stage(project, spec, directory or Path.cwd(), force=force)


def stage_list(*, root: Path | None = None) -> list[Stage]:
    """The pipeline's stages, in declaration order."""
    from cairn.commands._context import opened
    from cairn.pipeline.schema import load_pipeline

    with opened(root) as project:
        return list(load_pipeline(project.root).stages.values())


def dag(targets: Sequence[str] = (), *, downstream: bool = False,
        root: Path | None = None) -> Graph:
    """The stage graph: every stage, or `targets` with their upstream stages (with
    `downstream`, with the stages depending on them instead). Deps need not exist yet."""
    from cairn.commands._context import opened
    from cairn.pipeline.graph import build_graph, cwd_base
    from cairn.pipeline.schema import load_pipeline

    with opened(root) as project:
        graph = build_graph(load_pipeline(project.root), project.root, check_missing=False)
        if targets:
            graph = graph.subgraph(list(targets), downstream, cwd_base(project.root))
        return graph


# -- comparing revisions ------------------------------------------------------------------

@dataclass
class Diff:
    """The keys of params or metrics files that differ between two revisions."""

    old: str  # the revisions, as the user wrote them, "workspace", or a tag
    new: str
    changes: list[Change]
    warnings: list[str] = field(default_factory=list)  # files a revision lacks or cannot read

    def to_dict(self, precision: int | None = None) -> dict[str, dict[str, dict[str, Any]]]:
        """`{path: {key: {old, new, diff}}}` (DVC's JSON), floats rounded to `precision`."""
        from cairn.pipeline.compare import group

        return group(self.changes, precision)


@contextlib.contextmanager
def open_revisions(root: Path | None = None) -> Iterator[Revisions]:
    """The revisions of the Cairn project at `root`, or of the git repository there when
    there is no `cairn init`: whatever git holds can still be compared."""
    from cairn.errors import NotARepositoryError
    from cairn.pipeline import compare
    from cairn.project.context import ProjectContext, find_git_root

    cache_dir: Path | None
    try:
        project = ProjectContext.find(root)
        top, cache_dir, git_root = project.root, project.cache_dir, project.git_root
    except NotARepositoryError:
        git_root = find_git_root((root or Path.cwd()).absolute())
        if git_root is None:
            raise
        top, cache_dir = git_root, None
    with compare.open_revisions(top, cache_dir, git_root) as revs:
        yield revs


def params_diff(a: str | None = None, b: str | None = None, *,
                all_keys: bool = False, root: Path | None = None) -> Diff:
    """Params that differ between revisions `a` and `b` (default: HEAD and the
    workspace; one revision: it and the workspace); with `all_keys`, unchanged ones too."""
    from cairn.pipeline.compare import params_diff as do_diff

    with open_revisions(root) as revs:
        old, new, changes = do_diff(revs, a, b, all_keys)
    return Diff(old.label, new.label, changes)


def metrics_diff(a: str | None = None, b: str | None = None, *,
                 all_keys: bool = False, root: Path | None = None) -> Diff:
    """Metrics that differ between revisions `a` and `b` (defaults as `params_diff`); a
    metrics file a revision lacks or cannot parse is a warning."""
    from cairn.pipeline.metrics import metrics_diff as do_diff

    with open_revisions(root) as revs:
        found = do_diff(revs, a, b, all_keys)
    warnings = [*found.old.errors.values(), *found.new.errors.values()]
    return Diff(found.old.label, found.new.label, found.changes, warnings)


@dataclass
class MetricsShown:
    revisions: list[RevisionMetrics]  # the workspace, then every tag asked for

    @property
    def problems(self) -> list[str]:
        """Why each declared metrics file a revision lacks or cannot parse is missing."""
        return [why for r in self.revisions for why in r.errors.values()]

    @property
    def none_readable(self) -> bool:
        """Metrics files are declared, and not one could be read."""
        return bool(self.problems) and not any(r.metrics for r in self.revisions)

    def to_dict(self, precision: int | None = None) -> dict[str, Metrics]:
        """`{revision: {path: {key: value}}}`, floats rounded to `precision` digits."""
        from cairn.pipeline.compare import plain

        return {r.label: {path: {k: plain(v, precision) for k, v in values.items()}
                          for path, values in r.metrics.items()} for r in self.revisions}


def metrics_show(*, all_tags: bool = False, root: Path | None = None) -> MetricsShown:
    """The metrics of the workspace (and with `all_tags`, of every tag)."""
    from cairn.pipeline.metrics import metrics_show as do_show

    with open_revisions(root) as revs:
        return MetricsShown(do_show(revs, all_tags=all_tags))


@dataclass
class PlotsDrawn:
    written: list[Path]  # the HTML page, and the PNG if asked for
    warnings: list[str]  # plots files a revision lacks


def plots_diff(revisions: Sequence[str] = (), *, out: Path | None = None,
               png: bool = False, root: Path | None = None) -> PlotsDrawn:
    """Draw the plots of `revisions` (default: HEAD and the workspace; one: it and the
    workspace) into one HTML file, `out` (default: plots.html), and with `png` a PNG."""
    from cairn.pipeline.plots import plots_diff as do_diff

    with open_revisions(root) as revs:
        return PlotsDrawn(*do_diff(revs, revisions, out, png))
