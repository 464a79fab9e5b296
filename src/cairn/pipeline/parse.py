"""Parsing one pipeline file into stages: vars, templating, keys and types checked
(each stage's own keys in `parse_stage`).

Every mistake is a FormatError naming the file and line (found again from the key path
of the offending value, only when there is an error, so a good file parses at the speed
of the C YAML loader).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn, Protocol

from cairn import paths, yamlfile
from cairn.errors import FormatError, PathError
from cairn.pipeline import _resolve
from cairn.pipeline._parse_stage import StageParser, did_you_mean
from cairn.pipeline._resolve import KeyPath, ResolveError
from cairn.pipeline.params import DEFAULT_PARAMS_FILE, read_params, yaml_cache_dir
from cairn.pipeline.schema import Output, Pipeline, Stage

TOP_KEYS = ("stages", "vars", "plots", "metrics", "params", "artifacts", "datasets")
_BAD_NAME_CHARS = set("/:@\\")


class Source(Protocol):
    cache_dir: Path | None  # where parsed YAML may be kept (see yamlfile.load)

    def read(self, relpath: str) -> bytes | None: ...


class DiskSource:
    """Pipeline, params and vars files in the workspace, each path checked on disk
    (cairn.paths) before it is read."""

    def __init__(self, root: Path) -> None:
        from cairn.project.context import ProjectContext

        self.root = root
        self.cache_dir = yaml_cache_dir(root)
        self.inside = ProjectContext(root).paths

    def read(self, relpath: str) -> bytes | None:
        path = self.inside.check(relpath, "", "file")
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None


class MappingSource:
    cache_dir: Path | None = None

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files = files

    def read(self, relpath: str) -> bytes | None:
        return self.files.get(relpath)


class PipelineBuilder:
    """Pipeline files added one by one, then one Pipeline; stage names unique across."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.stages: dict[str, Stage] = {}
        self.files: list[str] = []
        self.plots: list[Output] = []
        self.metrics: list[Output] = []
        self.params: list[str] = []
        self._params_cache: dict[str, dict[str, Any]] = {}

    def add_file(self, relpath: str) -> None:
        data = self.source.read(relpath)
        if data is None:
            raise FormatError("pipeline file not found", relpath)
        parsed = PipelineFile(relpath, data, self)
        for stage, keypath in parsed.stages():
            if stage.name in self.stages:
                other = self.stages[stage.name].file
                raise parsed.error(f"stage '{stage.name}' is defined twice (also in {other}); "
                                   "rename one", keypath)
            self.stages[stage.name] = stage
        self.plots += parsed.top_level_outs("plots")
        self.metrics += parsed.top_level_outs("metrics")
        self.params += [o.path for o in parsed.top_level_outs("params")]
        self.files.append(relpath)

    def params_file(self, relpath: str) -> dict[str, Any] | None:
        """A params/vars file's contents, read once per load; None if it is absent."""
        if relpath not in self._params_cache:
            data = self.source.read(relpath)
            if data is None:
                return None
            self._params_cache[relpath] = read_params(relpath, data, self.source.cache_dir)
        return self._params_cache[relpath]

    def build(self) -> Pipeline:
        return Pipeline(dict(self.stages), tuple(self.files), tuple(self.plots),
                        tuple(self.metrics), tuple(self.params))


class PipelineFile:
    def __init__(self, relpath: str, data: bytes, builder: PipelineBuilder) -> None:
        self.relpath, self.data, self.builder = relpath, data, builder
        self.dir = posixpath.dirname(relpath)
        doc = yamlfile.load(data, relpath, builder.source.cache_dir)
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            self.fail("a pipeline file must be a mapping with a `stages:` section", ())
        for key in doc:
            if key not in TOP_KEYS:
                self.fail(f"unknown top-level key {key!r}{did_you_mean(key, TOP_KEYS)}; "
                          f"expected one of: {', '.join(TOP_KEYS)}", (key,))
        self.doc: dict[str, Any] = doc
        # without any ${…} there is nothing to template: params.yaml is not even read
        self.templated = b"${" in data or b"vars" in data
        self._context: dict[str, Any] | None = None
        if "vars" in doc:
            self._context = self._global_context()  # its errors even if nothing uses it

    @property
    def context(self) -> dict[str, Any]:
        if self._context is None:
            self._context = self._global_context()
        return self._context

    # -- errors -------------------------------------------------------------------------

    def error(self, message: str, keypath: KeyPath) -> FormatError:
        return FormatError(message, self.relpath, yamlfile.line_of(self.data, keypath))

    def fail(self, message: str, keypath: KeyPath) -> NoReturn:
        raise self.error(message, keypath)

    # -- vars ---------------------------------------------------------------------------

    def _global_context(self) -> dict[str, Any]:
        context: dict[str, Any] = {}
        default = self._read_vars_file(posixpath.join(self.dir, DEFAULT_PARAMS_FILE))
        if default is not None:
            context = _resolve.merge(context, default)
        return self.load_vars(self.doc.get("vars"), context, self.dir, ("vars",))

    def load_vars(self, items: Any, context: dict[str, Any], base: str,
                   keypath: KeyPath) -> dict[str, Any]:
        """`vars:` entries merged into `context`: inline mappings, or files
        (``path`` or ``path:key1,key2``) relative to `base`."""
        if items is None:
            return context
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list):
            self.fail("`vars` must be a list of files and mappings", keypath)
        for i, item in enumerate(items):
            if isinstance(item, dict):
                context = _resolve.merge(context, item)
            elif isinstance(item, str):
                context = _resolve.merge(context, self._vars_file(item, base, (*keypath, i)))
            else:
                self.fail("each `vars` entry must be a file name or a mapping", (*keypath, i))
        return context

    def _vars_file(self, item: str, base: str, keypath: KeyPath) -> dict[str, Any]:
        path, _, keys = item.partition(":")
        relpath = posixpath.normpath(posixpath.join(base, path))
        problem = paths.problem(relpath)
        if problem is not None:
            self.fail(f"vars file {path!r} {problem}; vars files must be inside the workspace",
                      keypath)
        try:
            doc = self._read_vars_file(relpath)
        except PathError as e:  # through a symlink out of the workspace: name our line
            self.fail(f"vars file {path!r}: {e}", keypath)
        if doc is None:
            self.fail(f"vars file {relpath} not found; create it or fix `vars`", keypath)
        wanted = [k.strip() for k in keys.split(",") if k.strip()]
        if not wanted:
            return doc
        try:
            return _resolve.select_keys(doc, wanted, relpath)
        except KeyError as e:
            self.fail(f"{e.args[0]}; fix `vars`", keypath)

    def _read_vars_file(self, relpath: str) -> dict[str, Any] | None:
        return self.builder.params_file(relpath)  # its errors name its own file and line

    # -- stages -------------------------------------------------------------------------

    def stages(self) -> Iterator[tuple[Stage, KeyPath]]:
        stages = self.doc.get("stages")
        if stages is None:
            return
        if not isinstance(stages, dict):
            self.fail("`stages` must be a mapping of stage names to definitions", ("stages",))
        for name, definition in stages.items():
            keypath: KeyPath = ("stages", name)
            name = str(name)
            if not name or _BAD_NAME_CHARS & set(name):
                self.fail(f"stage name {name!r} must not be empty or contain / : @ \\", keypath)
            if not isinstance(definition, dict):
                self.fail(f"stage '{name}' must be a mapping (cmd, deps, outs…)", keypath)
            try:
                for full, template, context, at in self._expand(name, definition, keypath):
                    yield StageParser(self, full, context, at).parse(template), at
            except ResolveError as e:
                raise self.error(f"stage '{name}': {e}", e.keypath) from None

    def _expand(self, name: str, definition: dict[str, Any], keypath: KeyPath
                ) -> Iterator[tuple[str, Any, dict[str, Any], KeyPath]]:
        """(name, definition, vars, key path of the definition) of each stage that one
        entry of `stages:` declares: itself, or one per foreach item / matrix cell."""
        prefix = f"{self.relpath}:" if self.dir else ""
        if "foreach" in definition:
            for key in definition:
                if key not in ("foreach", "do"):
                    raise ResolveError(f"a foreach stage has only `foreach` and `do`, not "
                                       f"{key!r}", (*keypath, key))
            if not isinstance(definition.get("do"), dict):
                raise ResolveError("`foreach` needs a `do:` mapping (the stage to repeat)",
                                   (*keypath, "do") if "do" in definition else keypath)
            at = (*keypath, "foreach")
            iterable = _resolve.interpolate(definition["foreach"], self.context, at)
            for suffix, (key, item) in _resolve.foreach_items(iterable, at).items():
                context = {**self.context, "item": item}
                if key is not None:
                    context["key"] = key
                yield f"{prefix}{name}@{suffix}", definition["do"], context, (*keypath, "do")
        elif "matrix" in definition:
            at = (*keypath, "matrix")
            matrix = _resolve.interpolate(definition["matrix"], self.context, at)
            template = {k: v for k, v in definition.items() if k != "matrix"}
            for suffix, item in _resolve.matrix_items(matrix, at).items():
                yield f"{prefix}{name}@{suffix}", template, {**self.context, "item": item}, \
                    keypath
        else:
            yield f"{prefix}{name}", definition, self.context if self.templated else {}, keypath

    def top_level_outs(self, section: str) -> list[Output]:
        """Top-level `plots:` (ids with props), `metrics:` or `params:` (file lists)."""
        items = self.doc.get(section)
        if items is None:
            return []
        keypath: KeyPath = (section,)
        try:
            if self.templated:
                items = _resolve.interpolate(items, self.context, keypath)
        except ResolveError as e:
            raise self.error(str(e), e.keypath) from None
        if not isinstance(items, list):
            self.fail(f"top-level `{section}` must be a list", keypath)
        found = []
        for i, item in enumerate(items):
            for name, props in _entries(item, section == "plots"):
                if not isinstance(name, str) or not name or not (
                        props is None or isinstance(props, dict)):
                    self.fail(f"each `{section}` entry must be a path"
                              + (" or {id: {x, y, …}}" if section == "plots" else ""),
                              (*keypath, i))
                path = posixpath.normpath(posixpath.join(self.dir, name))
                problem = paths.problem(path)
                if problem is not None:
                    self.fail(f"`{section}` entry {name!r} {problem}; it must name a file "
                              "inside the workspace", (*keypath, i))
                found.append(Output(path, cache=False, kind=section, options=props or {}))
        return found


def _entries(item: Any, allow_props: bool) -> list[tuple[Any, Any]]:
    if isinstance(item, dict) and allow_props:
        return list(item.items())
    return [(item, None)]


def check_user_path(path: str) -> None:
    """A path typed at `stage add`: relative, inside the repository."""
    paths.clean(posixpath.normpath(path), "", "path", root_ok=True,
                advice="use a path inside the workspace")
