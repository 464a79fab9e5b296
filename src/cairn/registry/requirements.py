"""The `require:` checks of a gate policy, each answering with one Verdict.

    signature         an input schema is recorded with the model
    git_clean         the run's commit had no uncommitted changes
    data_pushed       every object the version and its data name is on the default remote
    lineage_complete  commit, data digests and params are recorded
    smoke_test        the model loads in a fresh process and predicts its input example
    reproducible      its last `cairn reproduce` matched

None of them raises for what it finds: a missing run, remote or example is a failing
verdict that says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cairn.errors import CairnError
from cairn.registry import reproduction
from cairn.registry.gates import Verdict
from cairn.store.entities import ModelVersion, Run
from cairn.tracking.backend import Backend
from cairn.tracking.lineage import json_tag


@dataclass(frozen=True)
class Candidate:
    """What is being promoted: a registered version, and the run that made it."""

    name: str
    version: ModelVersion | None
    run: Run | None

    @property
    def tags(self) -> dict[str, str]:
        tags = dict(self.version.tags) if self.version is not None else {}
        if self.run is not None:
            tags.update(self.run.data.tags)
        return tags

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.run.data.metrics) if self.run is not None else {}

    @property
    def label(self) -> str:
        if self.version is not None:
            return f"version {self.version.version}"
        return f"run {self.run.info.run_id}" if self.run is not None else "the candidate"


def check(b: Backend, requirement: str, candidate: Candidate,
          rule: dict[str, Any]) -> Verdict:
    return _CHECKS[requirement](b, candidate, rule)


def _signature(b: Backend, c: Candidate, rule: dict[str, Any]) -> Verdict:
    expected = "an input schema recorded"
    if c.version is None:
        return _unregistered("require signature", expected, c)
    try:
        meta = _metadata(b, c.version)
    except CairnError as e:
        return Verdict("require signature", expected, f"model unreadable: {e}", False)
    if meta.signature is None or meta.signature.inputs is None:
        return Verdict("require signature", expected, "no signature (log the model with "
                       "an input_example or signature)", False)
    columns = getattr(meta.signature.inputs, "columns", None)
    shown = f"{len(columns)} input column(s)" if columns else "an input tensor spec"
    return Verdict("require signature", expected, shown, True)


def _git_clean(b: Backend, c: Candidate, rule: dict[str, Any]) -> Verdict:
    tags = c.tags
    commit = tags.get("cairn.git.commit")
    if not commit:
        return Verdict("require git_clean", "a clean commit", "no git commit recorded", False)
    if tags.get("cairn.git.dirty") == "true":
        return Verdict("require git_clean", "a clean commit",
                       f"{commit[:12]} with uncommitted changes", False)
    return Verdict("require git_clean", "a clean commit", f"{commit[:12]}, clean", True)


def _lineage_complete(b: Backend, c: Candidate, rule: dict[str, Any]) -> Verdict:
    tags = c.tags
    missing = [what for what, present in (
        ("git commit", bool(tags.get("cairn.git.commit"))),
        ("data digests", bool(json_tag(tags, "cairn.data"))),
        ("params", bool(c.run is not None and c.run.data.params)
         or bool(json_tag(tags, "cairn.params")))) if not present]
    expected = "commit, data digests and params recorded"
    if missing:
        return Verdict("require lineage_complete", expected, "missing: " + ", ".join(missing),
                       False)
    return Verdict("require lineage_complete", expected, "all recorded", True)


def _data_pushed(b: Backend, c: Candidate, rule: dict[str, Any]) -> Verdict:
    from cairn.objects.tree import MANIFEST_START, decode_tree
    from cairn.remotes.connect import has_remote, open_remote

    expected = "every object on the default remote"
    if c.version is None:
        return _unregistered("require data_pushed", expected, c)
    if b.repo is None or not has_remote(b.repo.config):
        return Verdict("require data_pushed", expected, "no default remote configured "
                       "(`cairn remote add -d NAME URL`)", False)
    data = json_tag(c.tags, "cairn.data") or {}
    level: dict[str, str] = {c.version.digest: "the model",
                             **{str(d): str(p) for p, d in data.items()}}
    try:
        remote = open_remote(b.repo.config)
        seen: set[str] = set()
        while level:
            on_remote = remote.exists_many(list(level))
            missing = sorted(p for oid, p in level.items() if oid not in on_remote)
            if missing:
                shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more"
                                                  if len(missing) > 3 else "")
                return Verdict("require data_pushed", expected,
                               f"not on {remote.label}: {shown} (`cairn push`)", False)
            seen.update(level)
            below: dict[str, str] = {}
            for oid, path in level.items():
                head = remote.read_head(oid)
                if head is None or not head.startswith(MANIFEST_START):
                    continue
                with remote.open(oid) as f:
                    entries = decode_tree(f.read(), oid)
                below.update({e.digest: f"{path}/{e.name}" for e in entries
                              if e.digest not in seen})
            level = below
    except CairnError as e:
        return Verdict("require data_pushed", expected, f"cannot check the remote: {e}", False)
    return Verdict("require data_pushed", expected, f"all {len(seen)} on {remote.label}", True)


def _smoke_test(b: Backend, c: Candidate, rule: dict[str, Any]) -> Verdict:
    timeout = float(rule.get("timeout", 60.0))
    expected = f"loads and predicts its input example within {timeout:g} s"
    if c.version is None:
        return _unregistered("require smoke_test", expected, c)
    uri = f"models:/{c.version.name}/{c.version.version}"
    env = {**os.environ, "CAIRN_TRACKING_URI": b.uri}
    command = [sys.executable, "-m", "cairn.registry.smoke", uri]
    if rule.get("trusted"):
        command.append("--trusted")
    try:
        done = subprocess.run(command, cwd=b.root or None, env=env, capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return Verdict("require smoke_test", expected, f"no prediction within {timeout:g} s",
                       False)
    lines = (done.stdout.strip() or done.stderr.strip() or "no output").splitlines()
    answer = lines[-1] if lines else ""
    if done.returncode != 0:
        return Verdict("require smoke_test", expected, answer[:300], False)
    try:
        report = json.loads(answer)
    except ValueError:
        return Verdict("require smoke_test", expected, answer[:300], False)
    return Verdict("require smoke_test", expected,
                   f"{report['rows']} prediction(s) in {report['seconds']:.2f} s", True)


def _reproducible(b: Backend, c: Candidate, rule: dict[str, Any]) -> Verdict:
    expected = "the last `cairn reproduce` matched"
    if c.version is None:
        return _unregistered("require reproducible", expected, c)
    last = reproduction.last_reproduction(b.store, c.version.name, c.version.version)
    if last is None:
        return Verdict("require reproducible", expected, "never reproduced (run `cairn "
                       f"reproduce models:/{c.version.name}/{c.version.version}`)", False)
    return Verdict("require reproducible", expected, f"{last.to_value}: {last.reason}"[:300],
                   reproduction.passed(last))


def _unregistered(rule: str, expected: str, c: Candidate) -> Verdict:
    return Verdict(rule, expected, f"{c.label} is not a registered version of '{c.name}'",
                   False)


def _metadata(b: Backend, mv: ModelVersion) -> Any:
    from cairn.flavors.base import read_metadata
    from cairn.registry.loading import materialized

    return read_metadata(materialized(b, mv.digest))


_CHECKS: dict[str, Callable[[Backend, Candidate, dict[str, Any]], Verdict]] = {
    "signature": _signature, "git_clean": _git_clean, "data_pushed": _data_pushed,
    "lineage_complete": _lineage_complete, "smoke_test": _smoke_test,
    "reproducible": _reproducible,
}
