"""Parsing one pipeline file into stages: vars, templating, keys and types checked.

Every mistake is a FormatError naming the file and line (found again from the key path
of the offending value, only when there is an error, so a good file parses at the speed
of the C YAML loader).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn, Protocol

from cairn.errors import FormatError, UserError
from cairn.pipeline import resolve, yamlfile
from cairn.pipeline.params import DEFAULT_PARAMS_FILE, read_params, yaml_cache_dir
from cairn.pipeline.resolve import KeyPath, ResolveError
from cairn.pipeline.schema import Output, ParamRef, Pipeline, Stage

TOP_KEYS = ("stages", "vars", "plots", "metrics", "params", "artifacts", "datasets")
STAGE_KEYS = ("cmd", "wdir", "deps", "params", "outs", "metrics", "plots", "frozen",
              "always_changed", "desc", "meta", "vars")
OUT_FLAGS = {"cache": bool, "persist": bool, "push": bool, "checkpoint": bool,
             "remote": str, "desc": str, "type": str, "labels": list, "meta": object}
PLOT_PROPS = {"x", "y", "x_label", "y_label", "title", "template", "header"}
_BAD_NAME_CHARS = set("/:@\\")


class Source(Protocol):
    cache_dir: Path | None  # where parsed YAML may be kept (see yamlfile.load)

    def read(self, relpath: str) -> bytes | None: ...


class DiskSource:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache_dir = yaml_cache_dir(root)

    def read(self, relpath: str) -> bytes | None:
        try:
            return (self.root / relpath).read_bytes()
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
                self.fail(f"unknown top-level key {key!r}{_suggest(key, TOP_KEYS)}; expected "
                          f"one of: {', '.join(TOP_KEYS)}", (key,))
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
            context = resolve.merge(context, default)
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
                context = resolve.merge(context, item)
            elif isinstance(item, str):
                context = resolve.merge(context, self._vars_file(item, base, (*keypath, i)))
            else:
                self.fail("each `vars` entry must be a file name or a mapping", (*keypath, i))
        return context

    def _vars_file(self, item: str, base: str, keypath: KeyPath) -> dict[str, Any]:
        path, _, keys = item.partition(":")
        relpath = posixpath.normpath(posixpath.join(base, path))
        doc = self._read_vars_file(relpath)
        if doc is None:
            self.fail(f"vars file {relpath} not found; create it or fix `vars`", keypath)
        wanted = [k.strip() for k in keys.split(",") if k.strip()]
        if not wanted:
            return doc
        try:
            return resolve.select_keys(doc, wanted, relpath)
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
            iterable = resolve.interpolate(definition["foreach"], self.context, at)
            for suffix, (key, item) in resolve.foreach_items(iterable, at).items():
                context = {**self.context, "item": item}
                if key is not None:
                    context["key"] = key
                yield f"{prefix}{name}@{suffix}", definition["do"], context, (*keypath, "do")
        elif "matrix" in definition:
            at = (*keypath, "matrix")
            matrix = resolve.interpolate(definition["matrix"], self.context, at)
            template = {k: v for k, v in definition.items() if k != "matrix"}
            for suffix, item in resolve.matrix_items(matrix, at).items():
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
                items = resolve.interpolate(items, self.context, keypath)
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
                found.append(Output(path, cache=False, kind=section, options=props or {}))
        return found


def _entries(item: Any, allow_props: bool) -> list[tuple[Any, Any]]:
    if isinstance(item, dict) and allow_props:
        return list(item.items())
    return [(item, None)]


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(str(word), choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class StageParser:
    """One stage definition, after templating, into a Stage."""

    def __init__(self, file: PipelineFile, name: str, context: dict[str, Any],
                 keypath: KeyPath) -> None:
        self.file, self.name, self.context, self.keypath = file, name, context, keypath

    def fail(self, message: str, *keys: str | int) -> NoReturn:
        raise self.file.error(f"stage '{self.name}': {message}", (*self.keypath, *keys))

    def value(self, definition: dict[str, Any], key: str) -> Any:
        if not self.file.templated:
            return definition.get(key)
        return resolve.interpolate(definition.get(key), self.context, (*self.keypath, key),
                                   in_cmd=key == "cmd")

    def parse(self, definition: dict[str, Any]) -> Stage:
        for key in definition:
            if key not in STAGE_KEYS:
                self.fail(f"unknown key {key!r}{_suggest(key, STAGE_KEYS)}; a stage has "
                          f"{', '.join(STAGE_KEYS)}", key)
        wdir = self.value(definition, "wdir")
        if wdir is not None and not isinstance(wdir, str):
            self.fail("`wdir` must be a path", "wdir")
        self.wdir = self.inside_repo(posixpath.join(self.file.dir, wdir or "."), "wdir")
        if definition.get("vars") is not None and self.file.templated:
            self.context = self.file.load_vars(definition["vars"], self.context, self.wdir,
                                                (*self.keypath, "vars"))
        outs = [*self.outputs(definition, "outs"), *self.outputs(definition, "metrics"),
                *self.outputs(definition, "plots")]
        return Stage(name=self.name, cmd=self.cmd(definition), wdir=self.wdir,
                     deps=self.deps(definition), params=self.params(definition),
                     outs=tuple(outs), frozen=self.flag(definition, "frozen"),
                     always_changed=self.flag(definition, "always_changed"),
                     file=self.file.relpath, desc=self.desc(definition))

    def cmd(self, definition: dict[str, Any]) -> tuple[str, ...]:
        cmd = self.value(definition, "cmd")
        if isinstance(cmd, str) and cmd.strip():
            return (cmd,)
        if isinstance(cmd, list) and cmd and all(isinstance(c, str) for c in cmd):
            return tuple(cmd)
        if cmd is None:
            self.fail("has no `cmd`; add the command that produces its outputs")
        self.fail("`cmd` must be a command or a list of commands", "cmd")

    def flag(self, definition: dict[str, Any], key: str) -> bool:
        value = self.value(definition, key)
        if value is None:
            return False
        if not isinstance(value, bool):
            self.fail(f"`{key}` must be true or false, not {value!r}", key)
        return value

    def desc(self, definition: dict[str, Any]) -> str | None:
        desc = definition.get("desc")
        if desc is not None and not isinstance(desc, str):
            self.fail("`desc` must be text", "desc")
        return desc

    def items(self, definition: dict[str, Any], key: str) -> list[tuple[int, Any]]:
        """A list section's entries with their indexes; a ${} that gave a list is spread."""
        value = self.value(definition, key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(f"`{key}` must be a list", key)
        return [(i, x) for i, item in enumerate(value)
                for x in (item if isinstance(item, list) else [item])]

    def inside_repo(self, path: str, *keys: str | int) -> str:
        normal = posixpath.normpath(path)
        if posixpath.isabs(normal) or normal == ".." or normal.startswith("../"):
            self.fail(f"{path!r} is outside the repository; outputs and wdir must stay inside",
                      *keys)
        return "" if normal == "." else normal

    def join(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self.wdir, path))

    def deps(self, definition: dict[str, Any]) -> tuple[str, ...]:
        deps = []
        for i, dep in self.items(definition, "deps"):
            if not isinstance(dep, str) or not dep:
                self.fail("each dep must be a path", "deps", i)
            # a URL or an absolute path is an external dependency, kept as written
            deps.append(dep if "://" in dep or posixpath.isabs(dep) else self.join(dep))
        return tuple(deps)

    def params(self, definition: dict[str, Any]) -> tuple[ParamRef, ...]:
        default = posixpath.join(self.wdir, DEFAULT_PARAMS_FILE)
        refs: list[ParamRef] = []
        for i, item in self.items(definition, "params"):
            if isinstance(item, str) and item:
                refs.append(ParamRef(default, item))
            elif isinstance(item, dict):
                for file, keys in item.items():
                    refs += self.param_keys(str(file), keys, i)
            else:
                self.fail("each params entry must be a key or {file: [keys]}", "params", i)
        return tuple(refs)

    def param_keys(self, file: str, keys: Any, index: int) -> list[ParamRef]:
        path = self.join(file)
        if keys is None or keys == []:
            return [ParamRef(path, None)]
        if isinstance(keys, str):
            keys = [keys]
        if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
            self.fail(f"params of {file} must be a list of keys", "params", index, file)
        return [ParamRef(path, k) for k in keys]

    def outputs(self, definition: dict[str, Any], kind: str) -> list[Output]:
        found = []
        for i, item in self.items(definition, kind):
            entries = item.items() if isinstance(item, dict) else [(item, None)]
            for path, flags in entries:
                if not isinstance(path, str) or not path:
                    self.fail(f"each of `{kind}` must be a path or {{path: {{cache: false}}}}",
                              kind, i)
                found.append(self.output(path, flags or {}, kind, i))
        return found

    def output(self, path: str, flags: Any, kind: str, index: int) -> Output:
        if kind == "plots" and isinstance(flags, list) and all(isinstance(f, dict) for f in flags):
            flags = {k: v for f in flags for k, v in f.items()}  # DVC allows a list of props
        if not isinstance(flags, dict):
            self.fail(f"the options of {path} must be a mapping like {{cache: false}}",
                      kind, index, path)
        options = {}
        for flag, value in flags.items():
            expected = OUT_FLAGS.get(flag)
            if expected is None and not (kind == "plots" and flag in PLOT_PROPS):
                allowed = sorted(OUT_FLAGS) + (sorted(PLOT_PROPS) if kind == "plots" else [])
                self.fail(f"unknown option {flag!r} of {path}{_suggest(flag, allowed)}",
                          kind, index, path, flag)
            if expected is not None and not isinstance(value, expected):
                self.fail(f"option {flag!r} of {path} must be {_TYPE_NAMES[expected]}",
                          kind, index, path, flag)
            if flag not in ("cache", "persist"):
                options[flag] = value
        return Output(self.inside_repo(self.join(path), kind, index),
                      cache=flags.get("cache", True), persist=flags.get("persist", False),
                      kind="out" if kind == "outs" else kind, options=options)


_TYPE_NAMES = {bool: "true or false", str: "text", list: "a list", object: "anything"}


def check_user_path(path: str) -> None:
    """A path typed at `stage add`: relative, inside the repository."""
    normal = posixpath.normpath(path)
    if posixpath.isabs(normal) or normal == ".." or normal.startswith("../"):
        raise UserError(f"{path}: outside the repository; use a path inside it")
