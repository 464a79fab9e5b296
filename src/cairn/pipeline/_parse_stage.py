"""One stage of a pipeline file, after templating, into a `Stage`: its keys, paths,
params and outputs checked, every mistake a FormatError at the stage's file and line.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any, NoReturn

from cairn import paths
from cairn.pipeline import _resolve
from cairn.pipeline._resolve import KeyPath
from cairn.pipeline.params import DEFAULT_PARAMS_FILE
from cairn.pipeline.schema import Output, ParamRef, Stage

if TYPE_CHECKING:
    from cairn.pipeline.parse import PipelineFile

STAGE_KEYS = ("cmd", "wdir", "deps", "params", "outs", "metrics", "plots", "frozen",
              "always_changed", "desc", "meta", "vars")
OUT_FLAGS = {"cache": bool, "persist": bool, "push": bool, "checkpoint": bool,
             "remote": str, "desc": str, "type": str, "labels": list, "meta": object}
PLOT_PROPS = {"x", "y", "x_label", "y_label", "title", "template", "header"}
_TYPE_NAMES = {bool: "true or false", str: "text", list: "a list", object: "anything"}


def did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    """The hint ` (did you mean 'cmd'?)` for a near miss among `choices`, else ""."""
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
        return _resolve.interpolate(definition.get(key), self.context, (*self.keypath, key),
                                   in_cmd=key == "cmd")

    def parse(self, definition: dict[str, Any]) -> Stage:
        for key in definition:
            if key not in STAGE_KEYS:
                self.fail(f"unknown key {key!r}{did_you_mean(key, STAGE_KEYS)}; a stage has "
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
        """`path` relative to the root, once cairn.paths finds it names a place in the
        workspace ("" for the root itself)."""
        normal = posixpath.normpath(path)
        problem = paths.problem(normal, root_ok=True)
        if problem is not None:
            self.fail(f"{keys[0]} {path!r} {problem}; a stage reads and writes only inside "
                      "the workspace", *keys)
        return "" if normal == "." else normal

    def join(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self.wdir, path))

    def deps(self, definition: dict[str, Any]) -> tuple[str, ...]:
        deps = []
        for i, dep in self.items(definition, "deps"):
            if not isinstance(dep, str) or not dep:
                self.fail("each dep must be a path", "deps", i)
            # a URL is an external dependency, kept as written (and reported missing)
            deps.append(dep if "://" in dep else self.inside_repo(self.join(dep), "deps", i))
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
        path = self.inside_repo(self.join(file), "params", index, file)
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
                self.fail(f"unknown option {flag!r} of {path}{did_you_mean(flag, allowed)}",
                          kind, index, path, flag)
            if expected is not None and not isinstance(value, expected):
                self.fail(f"option {flag!r} of {path} must be {_TYPE_NAMES[expected]}",
                          kind, index, path, flag)
            if flag not in ("cache", "persist"):
                options[flag] = value
        return Output(self.inside_repo(self.join(path), kind, index),
                      cache=flags.get("cache", True), persist=flags.get("persist", False),
                      kind="out" if kind == "outs" else kind, options=options)
