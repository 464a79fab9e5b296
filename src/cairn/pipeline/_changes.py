"""Has a stage changed since it last ran? Its cmd, deps, params and outs against cairn.lock.

Deps and outs are compared by content digest, never by timestamp: a file touched but
unchanged is the same dep. The stat cache (`objects/state.py`) answers for files whose
stat is unchanged, and a directory whose every stat is unchanged is answered from its
recorded fingerprint, so a clean check reads no file.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.pipeline.schema import Stage
from cairn.project.context import ProjectContext
from cairn.project.lockfile import LockedStage
from cairn.project.tracked import TrackedPath


@dataclass(frozen=True)
class StageInputs:
    """A stage's deps and params as they are now (None: the dep does not exist)."""

    deps: tuple[TrackedPath | None, ...]
    params: dict[str, dict[str, Any]]


class Workspace:
    """Digests of workspace paths and values of params, each found once per repro.

    A stage that runs changes what its outs (and the directories around them) hash to:
    `forget` them after it ran.
    """

    def __init__(self, project: ProjectContext) -> None:
        self.project = project
        self._paths: dict[str, TrackedPath | None] = {}
        self._params_files: dict[str, dict[str, Any]] = {}

    def path(self, rel: str) -> TrackedPath | None:
        if rel not in self._paths:
            self._paths[rel] = self._digest(rel)
        return self._paths[rel]

    def _digest(self, rel: str) -> TrackedPath | None:
        path = self.project.root / rel
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        state = self.project.state
        if stat.S_ISDIR(st.st_mode):
            from cairn.objects.tree import scan_dir

            scan = scan_dir(path, state, None, self.project.jobs, want_files=False,
                            inside=self.project.paths)
            return TrackedPath(rel, scan.oid, scan.size, scan.nfiles)
        digest = state.get(str(path), st)
        if digest is None:  # new or changed since it was last hashed
            from cairn.objects.hashing import hash_file

            started = time.time_ns()
            digest = hash_file(path, st.st_size)
            state.put(str(path), st, digest, started)
        return TrackedPath(rel, digest, st.st_size)

    def known(self, found: TrackedPath) -> None:
        """Record a digest computed elsewhere (a stage's outs, just stored)."""
        self._paths[found.path] = found

    def forget(self, rel: str) -> None:
        """`rel` was rewritten: forget it, what is inside it and what contains it."""
        for known in list(self._paths):
            if known == rel or known.startswith(rel + "/") or rel.startswith(known + "/"):
                del self._paths[known]
        for file in list(self._params_files):
            if file == rel or file.startswith(rel + "/"):  # a stage wrote a params file
                del self._params_files[file]

    def params(self, stage: Stage) -> dict[str, dict[str, Any]]:
        """``{file: {key: value}}`` of the params `stage` uses (all keys of a file named
        without keys); UserError for a key the file does not have."""
        from cairn.pipeline.params import stage_param_values

        return stage_param_values(self.project.root, stage, self._params_files)

    def inputs(self, stage: Stage) -> StageInputs:
        return StageInputs(tuple(self.path(d) for d in stage.deps), self.params(stage))


def reasons_to_run(stage: Stage, locked: LockedStage | None, inputs: StageInputs,
                   ws: Workspace) -> list[str]:
    """Why `stage` must run, in the user's words; empty when nothing changed."""
    if stage.always_changed:
        return ["always_changed"]
    if locked is None:
        return ["never run before"]
    reasons = [] if tuple(stage.cmd) == locked.cmd else ["cmd changed"]
    reasons += _path_reasons("dep", list(zip(stage.deps, inputs.deps, strict=True)), locked.deps)
    reasons += _param_reasons(locked.params, inputs.params)
    reasons += _path_reasons("out", [(o.path, ws.path(o.path)) for o in stage.outs], locked.outs)
    return reasons


def _path_reasons(kind: str, declared: list[tuple[str, TrackedPath | None]],
                  locked: tuple[TrackedPath, ...]) -> list[str]:
    """Declared paths (as they are now) missing, added or changed since `locked`; then
    the locked ones no longer declared."""
    reasons = []
    for rel, now in declared:
        before = next((p for p in locked if p.path == rel), None)
        if now is None:
            reasons.append(f"{kind} {rel} missing")
        elif before is None:
            reasons.append(f"{kind} {rel} added")
        elif before.digest != now.digest:
            reasons.append(f"{kind} {rel} changed")
    names = {rel for rel, _ in declared}
    reasons += [f"{kind} {p.path} removed" for p in locked if p.path not in names]
    return reasons


def _param_reasons(before: Any, now: dict[str, dict[str, Any]]) -> list[str]:
    reasons = []
    for file in sorted(set(before) | set(now)):
        old, new = before.get(file, {}), now.get(file, {})
        for key in list(dict.fromkeys([*new, *old])):
            if key not in old:
                reasons.append(f"param {key} added")
            elif key not in new:
                reasons.append(f"param {key} removed")
            elif not _same(old[key], new[key]):
                reasons.append(f"param {key} {_show(old[key])} → {_show(new[key])}")
    return reasons


def _same(a: Any, b: Any) -> bool:
    # 1 and 1.0 and True compare equal in Python; in a params file they are different.
    return type(a) is type(b) and a == b


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value if value and " " not in value else repr(value)
    from cairn.project.canonical import scalar_text

    return scalar_text(value)


def outs_state(stage: Stage, ws: Workspace) -> tuple[TrackedPath, ...]:
    """The stage's outs as they are (all exist: checked by the caller)."""
    found = [ws.path(o.path) for o in stage.outs]
    return tuple(f for f in found if f is not None)


def stage_root(project: ProjectContext, stage: Stage) -> Path:
    return project.root / stage.wdir if stage.wdir else project.root
