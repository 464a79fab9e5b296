"""`cairn stage add`: a new stage appended to the pipeline file, everything else in the
file (comments, order, other stages) left exactly as it was.

The file is edited as text at the end of its `stages:` block, the result is parsed and
its graph checked, and only then it replaces the old file atomically (under the
repository lock, so two concurrent `stage add`s both land).
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn.errors import FormatError, UserError
from cairn.fsutil import atomic_write
from cairn.pipeline.params import DEFAULT_PARAMS_FILE
from cairn.pipeline.parse import DiskSource, check_user_path
from cairn.project.context import ProjectContext


@dataclass
class StageSpec:
    """What the user typed; paths relative to the stage's wdir, as in the file."""

    name: str
    cmd: Sequence[str]
    deps: Sequence[str] = ()
    outs: Sequence[str] = ()
    outs_no_cache: Sequence[str] = ()
    outs_persist: Sequence[str] = ()
    params: Sequence[str] = ()
    metrics: Sequence[str] = ()
    metrics_no_cache: Sequence[str] = ()
    plots: Sequence[str] = ()
    plots_no_cache: Sequence[str] = ()
    wdir: str | None = None
    always_changed: bool = False
    desc: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def definition(self) -> dict[str, Any]:
        """The stage as it will be written, keys in DVC's order."""
        if not self.name or set(self.name) & set("/:@\\") or self.name != self.name.strip():
            raise UserError(f"stage name {self.name!r} must not be empty or contain "
                            "/ : @ \\ or surrounding spaces")
        if not self.cmd:
            raise UserError("give the stage's command after the options, e.g. "
                            "`cairn stage add -n train python train.py`")
        for path in (*self.deps, *self.outs, *self.outs_no_cache, *self.outs_persist,
                     *self.metrics, *self.metrics_no_cache, *self.plots, *self.plots_no_cache):
            if "://" not in path:
                check_user_path(posixpath.join(self.wdir or ".", path))
        stage: dict[str, Any] = {"cmd": self.cmd[0] if len(self.cmd) == 1
                                 else shlex.join(self.cmd)}
        if self.wdir and self.wdir != ".":
            stage["wdir"] = self.wdir
        if self.desc:
            stage["desc"] = self.desc
        _put(stage, "deps", list(self.deps))
        _put(stage, "params", _params(self.params))
        _put(stage, "outs", [*self.outs, *({p: {"cache": False}} for p in self.outs_no_cache),
                             *({p: {"persist": True}} for p in self.outs_persist)])
        _put(stage, "metrics", [*self.metrics,
                                *({p: {"cache": False}} for p in self.metrics_no_cache)])
        _put(stage, "plots", [*self.plots, *({p: {"cache": False}} for p in self.plots_no_cache)])
        if self.always_changed:
            stage["always_changed"] = True
        return stage


def _put(stage: dict[str, Any], key: str, values: list[Any]) -> None:
    if values:
        stage[key] = values


def _params(specs: Sequence[str]) -> list[Any]:
    """``-p a,b`` (params.yaml), ``-p file.json:a,b``, ``-p file.toml:`` (all its keys)."""
    default: list[str] = []
    by_file: dict[str, list[str] | None] = {}
    for spec in specs:
        file, sep, keys = spec.rpartition(":") if ":" in spec else ("", "", spec)
        names = [k.strip() for k in keys.split(",") if k.strip()]
        if not sep or file == DEFAULT_PARAMS_FILE:
            default += [n for n in names if n not in default]
        elif not names:
            by_file[file] = None
        elif file not in by_file or by_file[file] is not None:
            known = by_file.get(file) or []
            by_file[file] = known + [n for n in names if n not in known]
    return [*default, *({f: k} for f, k in by_file.items())]


@dataclass(frozen=True)
class StageAdded:
    pipeline_file: Path
    ignores: list[Path]  # .gitignore files that now list the stage's cached outputs


def add_stage(repo: ProjectContext, spec: StageSpec, directory: Path,
              force: bool = False) -> StageAdded:
    """Write `spec` into the pipeline file of `directory`, and keep its cached outputs
    out of git as DVC does (where their directory exists; repro does the rest)."""
    from cairn.pipeline.graph import build_graph
    from cairn.pipeline.schema import load_workspace_pipeline, pipeline_file_for
    from cairn.project.ignore import ensure_ignored

    definition = spec.definition()
    with repo.lock():
        path = pipeline_file_for(directory)
        relpath = path.relative_to(repo.root).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        except UnicodeDecodeError:
            raise FormatError("not UTF-8 text", relpath) from None
        new_text = with_stage(text, relpath, spec.name, definition, force)
        source = _Overlay(repo.root, {relpath: new_text.encode()})
        pipeline = load_workspace_pipeline(repo.root, source, [relpath])
        build_graph(pipeline, repo.root, check_missing=False, inside=repo.paths)
        atomic_write(path, new_text.encode())
        stage = pipeline.stages[spec.name if "/" not in relpath else f"{relpath}:{spec.name}"]
        ignores = [changed for out in stage.outs if out.cache
                   and (repo.root / out.path).parent.is_dir()
                   and (changed := ensure_ignored(repo.root / out.path)) is not None]
    return StageAdded(path, list(dict.fromkeys(ignores)))


class _Overlay(DiskSource):
    def __init__(self, root: Path, files: dict[str, bytes]) -> None:
        super().__init__(root)
        self.files = files

    def read(self, relpath: str) -> bytes | None:
        return self.files[relpath] if relpath in self.files else super().read(relpath)


def with_stage(text: str, relpath: str, name: str, definition: dict[str, Any],
               force: bool) -> str:
    """`text` (a pipeline file) with stage `name` added at the end of `stages:`, or put
    in place of the stage of that name when `force`."""
    import yaml

    from cairn import yamlfile

    yamlfile.load(text, relpath)  # any YAML error, with its line, before we edit
    root = yaml.compose(text, Loader=yamlfile.pipeline_loader())
    if root is None:
        return _ensure_newline(text) + "stages:\n" + _block(name, definition, 2)
    if not isinstance(root, yaml.MappingNode):
        raise FormatError("a pipeline file must be a mapping with a `stages:` section", relpath, 1)
    found = next(((k, v) for k, v in root.value if getattr(k, "value", None) == "stages"), None)
    if found is None:
        return _ensure_newline(text) + "stages:\n" + _block(name, definition, 2)
    key, stages = found
    lines = text.splitlines(keepends=True)
    if isinstance(stages, yaml.ScalarNode) and stages.value in ("", "~", "null", "Null", "NULL"):
        lines[key.start_mark.line] = "stages:\n"
        lines.insert(key.start_mark.line + 1, _block(name, definition, 2))
        return "".join(lines)
    if not isinstance(stages, yaml.MappingNode):
        raise FormatError("`stages` must be a mapping of stage names", relpath,
                          stages.start_mark.line + 1)
    if stages.flow_style:
        if stages.value:
            raise UserError(f"{relpath}: `stages` is written inline ({{…}}); write it as a "
                            "block mapping to add stages with `cairn stage add`")
        start, end = stages.start_mark.index, stages.end_mark.index
        rest = text[end:].lstrip(" ")
        return (text[:start].rstrip(" ") + "\n" + _block(name, definition, 2)
                + (rest[1:] if rest.startswith("\n") else rest))
    indent = stages.value[0][0].start_mark.column if stages.value else 2
    block = _block(name, definition, indent)
    names = [k.value for k, _ in stages.value]
    if name in names:
        if not force:
            raise UserError(f"stage '{name}' already exists in {relpath}; use --force to "
                            "replace it")
        i = names.index(name)
        first = stages.value[i][0].start_mark.line
        last = (stages.value[i + 1][0].start_mark.line if i + 1 < len(stages.value)
                else _end_line(stages.value[i][1], lines, indent))
        return "".join([*lines[:first], block, *lines[last:]])
    at = _end_line(stages.value[-1][1], lines, indent)
    return "".join([*_ensure_lines_newline(lines[:at]), block, *lines[at:]])


def _end_line(node: Any, lines: list[str], indent: int) -> int:
    """The index of the first line after the stage whose definition is `node`."""
    mark = node.end_mark
    end: int = min(mark.line if mark.column == 0 else mark.line + 1, len(lines))
    while end > 0 and _trailer(lines[end - 1], indent):
        end -= 1  # blank lines and comments of what follows stay after the new stage
    return end


def _trailer(line: str, indent: int) -> bool:
    stripped = line.lstrip(" ")
    return not stripped.strip() or (stripped.startswith("#") and
                                    len(line) - len(stripped) < indent)


def _ensure_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def _ensure_lines_newline(lines: list[str]) -> list[str]:
    if lines and not lines[-1].endswith("\n"):
        return [*lines[:-1], lines[-1] + "\n"]
    return lines


def _block(name: str, definition: dict[str, Any], indent: int) -> str:
    from cairn import yamlfile

    text = yamlfile.dump({name: definition}, yamlfile.pipeline_dumper(),
                         default_flow_style=False, allow_unicode=True, width=1000)
    pad = " " * indent
    return "".join(pad + line if line.strip() else line for line in text.splitlines(True))
