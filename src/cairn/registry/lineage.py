"""The lineage of a model: code, data, params, pipeline stage, run, metrics, registry.

It is a join, not a copy: the version names a digest and a run; the run's (or, for a
version registered from a path, the version's) ``cairn.*`` tags name the git commit,
data digests and params; cairn.lock names the stage whose out has the model's digest;
the audit log holds every transition.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cairn.errors import CairnError, NotFoundError
from cairn.objects.odb import ObjectDB
from cairn.objects.tree import read_tree
from cairn.registry import reproduction, uris
from cairn.store.base import MetadataStore
from cairn.store.entities import ModelVersion, Run
from cairn.tracking.lineage import json_tag


def run_or_none(store: MetadataStore, run_id: str | None) -> Run | None:
    """The run, or None when there is none or it is gone (a version outlives nothing)."""
    if not run_id:
        return None
    try:
        return store.get_run(run_id)
    except NotFoundError:
        return None


def _source_tags(run: Run | None, mv: ModelVersion | None) -> dict[str, str]:
    tags = dict(mv.tags) if mv is not None else {}
    if run is not None:
        tags.update(run.data.tags)
    return tags


def load_lineage(store: MetadataStore, resolved: uris.Resolved) -> dict[str, Any]:
    """The short lineage attached to a loaded model's `.metadata.lineage`."""
    mv = resolved.version
    run = run_or_none(store, resolved.run_id)
    tags = _source_tags(run, mv)
    out: dict[str, Any] = {"model_uri": resolved.uri, "digest": resolved.digest,
                           "run_id": resolved.run_id,
                           "git_commit": tags.get("cairn.git.commit"),
                           "git_branch": tags.get("cairn.git.branch"),
                           "git_dirty": tags.get("cairn.git.dirty") == "true",
                           "data": json_tag(tags, "cairn.data") or {},
                           "params": dict(run.data.params) if run else {},
                           "metrics": dict(run.data.metrics) if run else {}}
    if mv is not None:
        out.update({"name": mv.name, "version": mv.version, "stage": mv.current_stage,
                    "aliases": list(mv.aliases)})
    return out


def model_lineage(store: MetadataStore, odb: ObjectDB, uri: str,
                  root: Path | None) -> dict[str, Any]:
    """Everything `cairn models lineage URI` shows (and returns with --json)."""
    resolved = uris.resolve(store, uri)
    mv = resolved.version
    run = run_or_none(store, resolved.run_id)
    tags = _source_tags(run, mv)
    commit = tags.get("cairn.git.commit")
    data = json_tag(tags, "cairn.data") or {}
    log = store.get_audit_log(mv.name, mv.version) if mv is not None else []
    return {
        "uri": uri,
        "digest": resolved.digest,
        "model": _version_dict(mv),
        "git": {"commit": commit, "branch": tags.get("cairn.git.branch"),
                "dirty": tags.get("cairn.git.dirty") == "true",
                "diff_digest": tags.get("cairn.git.diff_digest"),
                "tags": git_tags_at(root, commit)},
        "data": data,
        "params": dict(run.data.params) if run else {},
        "params_file": json_tag(tags, "cairn.params"),
        "pipeline_stage": pipeline_stage(odb, resolved.digest, tags, data),
        "run": _run_dict(store, run),
        "metrics": dict(run.data.metrics) if run else {},
        "environment": {k[len("cairn."):]: json_tag(tags, k) if k.endswith(("argv", "packages"))
                        else v for k, v in tags.items()
                        if k.startswith(("cairn.source.", "cairn.python", "cairn.packages",
                                         "cairn.user", "cairn.host"))},
        "transitions": [_audit_dict(e) for e in log],
        "requests": ([asdict(r) for r in store.search_promotion_requests(mv.name, "open")
                      if r.version == mv.version] if mv is not None else []),
        "reproduction": (_audit_dict(last) if mv is not None and (
            last := reproduction.last_reproduction(store, mv.name, mv.version)) else None),
        "packages": ([asdict(p) for p in store.list_packages(mv.name, mv.version)]
                     if mv is not None else []),  # built by `cairn package build`
    }


def _version_dict(mv: ModelVersion | None) -> dict[str, Any] | None:
    if mv is None:
        return None
    return {"name": mv.name, "version": mv.version, "stage": mv.current_stage,
            "aliases": list(mv.aliases), "source": mv.source, "run_id": mv.run_id,
            "description": mv.description, "user_id": mv.user_id,
            "created": mv.creation_timestamp,
            "tags": {k: v for k, v in mv.tags.items() if not k.startswith("cairn.")}}


def _run_dict(store: MetadataStore, run: Run | None) -> dict[str, Any] | None:
    if run is None:
        return None
    info = run.info
    try:
        experiment = store.get_experiment(info.experiment_id).name
    except NotFoundError:
        experiment = None
    return {"run_id": info.run_id, "run_name": info.run_name, "status": info.status,
            "experiment_id": info.experiment_id, "experiment": experiment,
            "start_time": info.start_time, "end_time": info.end_time, "user": info.user_id,
            "lifecycle_stage": info.lifecycle_stage}


def _audit_dict(entry: Any) -> dict[str, Any]:
    return asdict(entry)


def git_tags_at(root: Path | None, commit: str | None) -> list[str]:
    if root is None or not commit:
        return []
    try:
        proc = subprocess.run(["git", "tag", "--points-at", commit], cwd=root,
                              capture_output=True, text=True, check=False)
    except OSError:
        return []
    return proc.stdout.split() if proc.returncode == 0 else []


def pipeline_stage(odb: ObjectDB, digest: str, tags: dict[str, str],
                   data: dict[str, str]) -> dict[str, str] | None:
    """The cairn.lock stage whose out is this model (its directory, or its one file)."""
    stages = json_tag(tags, "cairn.stages") or {}
    if not stages:
        return None
    candidates = {digest}
    try:
        entries = read_tree(odb, digest)
        if len(entries) == 1 and not entries[0].is_dir:
            candidates.add(entries[0].digest)
    except CairnError:
        pass  # not in this cache: match the directory digest alone
    for stage, outs in sorted(stages.items()):
        for path in outs:
            if data.get(path) in candidates:
                return {"stage": stage, "out": path}
    return None
