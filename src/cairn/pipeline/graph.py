"""The stage graph: which stage feeds which, checked before anything runs.

Stage B depends on stage A when one of B's deps is one of A's outputs, lies inside one
(a file in an output directory), or contains one (a directory holding an output).
Checks, each a one-line UserError naming stages and paths: two stages with one output,
an output inside another output, a cycle, a dep that nothing produces and that is
neither in the workspace nor tracked by a pointer file, an output a pointer file tracks.
"""

from __future__ import annotations

import bisect
import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cairn import paths
from cairn.errors import NotFoundError, UserError
from cairn.pipeline.schema import PIPELINE_FILES, Output, Pipeline, Stage

_POINTER_SUFFIXES = (".cairn", ".dvc")


@dataclass(frozen=True)
class Graph:
    stages: dict[str, Stage]          # in dependency order (producers before consumers)
    producers: dict[str, list[str]]   # stage → the stages producing its deps
    consumers: dict[str, list[str]]   # stage → the stages depending on its outputs

    def upstream(self, stage: Stage) -> list[Stage]:
        """The stages producing `stage`'s deps, in pipeline order."""
        return [self.stages[n] for n in self.producers[stage.name]]

    def downstream(self, stage: Stage) -> list[Stage]:
        """The stages depending on `stage`'s outputs, in pipeline order."""
        return [self.stages[n] for n in self.consumers[stage.name]]

    def select(self, targets: Iterable[str], base: str = "") -> list[Stage]:
        """Stages named by a user: a stage name (``train``, ``dvc.yaml:train``,
        ``sub/dvc.yaml:train``), a foreach/matrix group (``train`` for ``train@…``), a
        pipeline file (all its stages) or an output path (its producer). `base`: the
        directory the user typed them in (see `cwd_base`)."""
        chosen: dict[str, Stage] = {}
        for target in targets:
            found = next((f for t in _as_typed_in(target, base) if (f := self._find(t))), [])
            if not found:
                raise NotFoundError(self._unknown(target))
            chosen.update((s.name, s) for s in found)
        return list(chosen.values())

    def stages_to_run(self, targets: list[str], downstream: bool = False,
                      base: str = "") -> list[Stage]:
        """In dependency order: every stage when no targets; else the targets with all
        they depend on, or with `downstream`, the targets and all that depends on them."""
        if not targets:
            return list(self.stages.values())
        edges = self.consumers if downstream else self.producers
        wanted = self._closure([s.name for s in self.select(targets, base)], edges)
        return [s for name, s in self.stages.items() if name in wanted]

    def subgraph(self, targets: list[str], downstream: bool = False, base: str = "") -> Graph:
        """The part of the graph `stages_to_run` would run (for `cairn dag TARGET`)."""
        kept = {s.name: s for s in self.stages_to_run(targets, downstream, base)}
        return Graph(kept, {n: [p for p in self.producers[n] if p in kept] for n in kept},
                     {n: [c for c in self.consumers[n] if c in kept] for n in kept})

    def edges(self) -> list[tuple[str, str]]:
        return [(p, n) for n in self.stages for p in self.producers[n]]

    def to_ascii(self) -> str:
        from cairn.pipeline._render import ascii_dag

        return ascii_dag(list(self.stages), self.edges())

    def to_mermaid(self) -> str:
        from cairn.pipeline._render import mermaid

        return mermaid(list(self.stages), self.edges())

    def to_dot(self) -> str:
        from cairn.pipeline._render import dot

        return dot(list(self.stages), self.edges())

    def _find(self, target: str) -> list[Stage]:
        target = target.rstrip("/") or target
        head, sep, rest = target.rpartition(":")
        if sep and head in PIPELINE_FILES:  # dvc.yaml:train names a root stage
            target = rest
        if target in self.stages:
            return [self.stages[target]]
        group = [s for n, s in self.stages.items() if n.startswith(f"{target}@")]
        if group:
            return group
        by_file = [s for s in self.stages.values() if s.file == posixpath.normpath(target)]
        if by_file:
            return by_file
        path = posixpath.normpath(target)
        return [s for s in self.stages.values() if any(o.path == path for o in s.outs)]

    def _unknown(self, target: str) -> str:
        import difflib

        names = list(self.stages)
        close = difflib.get_close_matches(target, names, n=1)
        hint = f"did you mean '{close[0]}'?" if close else (
            f"stages: {', '.join(names[:10])}{', …' if len(names) > 10 else ''}"
            if names else "the pipeline has no stages")
        return f"no stage '{target}' in the pipeline; {hint}"

    @staticmethod
    def _closure(start: list[str], edges: dict[str, list[str]]) -> set[str]:
        seen, todo = set(start), list(start)
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen


def cwd_base(root: Path) -> str:
    """The current directory relative to `root` ("" at the root or outside it)."""
    rel = os.path.relpath(Path.cwd().absolute(), root.absolute())
    return "" if rel == "." or rel.startswith("..") else Path(rel).as_posix()


def _as_typed_in(target: str, base: str) -> list[str]:
    """What `target` may mean when typed in the directory `base`, most likely first: as
    DVC does, relative to that directory (`train` is `base/dvc.yaml:train`, `out.txt` is
    `base/out.txt`); then as seen from the root, so root-relative names work anywhere."""
    if not base:
        return [target]
    head, sep, rest = target.rpartition(":")
    if sep and head.rpartition("/")[2] in PIPELINE_FILES:
        return [f"{posixpath.normpath(posixpath.join(base, head))}:{rest}", target]
    return [*(f"{base}/{name}:{target}" for name in PIPELINE_FILES),
            posixpath.normpath(posixpath.join(base, target)), target]


def build_graph(pipeline: Pipeline, root: Path, check_missing: bool = True,
                inside: paths.Root | None = None) -> Graph:
    """The checked graph of `pipeline` in the workspace at `root`; `check_missing=False`
    allows deps that do not exist yet (while a pipeline is being written). With `inside`
    (the workspace on disk), its paths are checked there too (`check_on_disk`)."""
    outs = _outputs_by_path(pipeline)
    if inside is not None:
        check_on_disk(pipeline, inside)
    if check_missing:
        _check_not_tracked(outs, root)
    ordered_outs = sorted(outs)
    producers: dict[str, list[str]] = {}
    position = {name: i for i, name in enumerate(pipeline.stages)}
    for stage in pipeline.stages.values():
        found: dict[str, None] = {}
        for dep in stage.deps:
            makers = _producers_of(dep, outs, ordered_outs)
            if stage.name in makers:
                raise UserError(f"stage '{stage.name}' depends on its own output ({dep}); "
                                "a stage cannot read what it writes — remove the dep or the out")
            if not makers and check_missing:
                _check_exists(stage, dep, root)
            found.update(dict.fromkeys(makers))
        producers[stage.name] = sorted(found, key=position.__getitem__)
    order = _dependency_order(list(pipeline.stages), producers)
    consumers: dict[str, list[str]] = {n: [] for n in order}
    for name in pipeline.stages:
        for producer in producers[name]:
            consumers[producer].append(name)
    return Graph({n: pipeline.stages[n] for n in order},
                 {n: producers[n] for n in order}, consumers)


def _outputs_by_path(pipeline: Pipeline) -> dict[str, tuple[Stage, Output]]:
    outs: dict[str, tuple[Stage, Output]] = {}
    from cairn.project.ignore import check_ignorable

    for stage in pipeline.stages.values():
        for out in stage.outs:
            _check_not_reserved(stage, out.path)
            if out.cache:  # repro git-ignores it once the stage ran: refuse it before
                check_ignorable(out.path)
            if out.path in outs:
                other = outs[out.path][0].name
                raise UserError(
                    f"output '{out.path}' is listed twice in stage '{other}'; remove one"
                    if other == stage.name else
                    f"output '{out.path}' is produced by both stage '{other}' and stage "
                    f"'{stage.name}'; an output must have one producing stage")
            outs[out.path] = (stage, out)
    for path, (stage, _) in outs.items():
        parent = posixpath.dirname(path)
        while parent:
            if parent in outs:
                raise UserError(f"output '{path}' of stage '{stage.name}' is inside output "
                                f"'{parent}' of stage '{outs[parent][0].name}'; outputs must "
                                "not overlap — declare only one of them")
            parent = posixpath.dirname(parent)
    return outs


def _check_not_reserved(stage: Stage, path: str) -> None:
    """repro moves a stage's outs aside before it runs: never the root, .git or .cairn."""
    where = "is the repository root" if path in ("", ".") else paths.problem(path)
    if where is not None:
        raise UserError(f"output '{path or '.'}' of stage '{stage.name}' {where}; declare "
                        "the files or directories the command writes instead")


def check_on_disk(pipeline: Pipeline, inside: paths.Root) -> None:
    """PathError unless every path the stages read or write (outs, deps, params files,
    wdir) reaches its place without a symlink out of the workspace or into .git/.cairn:
    before repro moves, hashes or runs anything."""
    for stage in pipeline.stages.values():
        where = f"{stage.file}: stage '{stage.name}'"
        inside.check(stage.wdir or ".", where, "wdir", root_ok=True)
        for out in stage.outs:
            inside.check(out.path, where, "out")
        for dep in stage.deps:
            if "://" not in dep:
                inside.check(dep, where, "dep")
        for file in dict.fromkeys(ref.file for ref in stage.params):
            inside.check(file, where, "params file")


def _producers_of(dep: str, outs: dict[str, tuple[Stage, Output]],
                  ordered_outs: list[str]) -> list[str]:
    """The stages whose outputs are `dep`, contain it, or lie inside it."""
    makers = []
    path = dep
    while path:  # dep is an output, or inside one
        if path in outs:
            makers.append(outs[path][0].name)
        path = posixpath.dirname(path)
    prefix = dep + "/"  # outputs inside a dep directory
    i = bisect.bisect_left(ordered_outs, prefix)
    while i < len(ordered_outs) and ordered_outs[i].startswith(prefix):
        makers.append(outs[ordered_outs[i]][0].name)
        i += 1
    return makers


def _check_not_tracked(outs: dict[str, tuple[Stage, Output]], root: Path) -> None:
    """An output also tracked by `cairn add` would have two owners fighting over it."""
    for path, (stage, _) in outs.items():
        if os.path.exists(root / (path + ".cairn")):
            raise UserError(f"output '{path}' of stage '{stage.name}' is also tracked by "
                            f"{path}.cairn; remove that pointer file (git rm) or the output")


def _check_exists(stage: Stage, dep: str, root: Path) -> None:
    if "://" in dep or os.path.lexists(root / dep):
        return
    path = dep
    while path:  # tracked by a pointer file: itself, or a directory holding it
        if any(os.path.exists(root / (path + s)) for s in _POINTER_SUFFIXES):
            return
        path = posixpath.dirname(path)
    raise UserError(f"stage '{stage.name}' depends on '{dep}', which does not exist and no "
                    "stage produces; create it, `cairn add` it, or fix the stage's deps")


def _dependency_order(names: list[str], producers: dict[str, list[str]]) -> list[str]:
    """Producers before consumers, otherwise in declaration order; UserError on a cycle."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: placed
    for start in names:
        if state.get(start) == 2:
            continue
        path, stack = [start], [iter(producers[start])]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                done = path.pop()
                state[done] = 2
                order.append(done)
            elif state.get(nxt) == 1:
                cycle = [*path[path.index(nxt):], nxt]
                raise UserError("the pipeline has a cycle: " + " -> ".join(reversed(cycle))
                                + "; a stage cannot depend, even indirectly, on its own outputs")
            elif state.get(nxt) != 2:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(producers[nxt]))
    return order
