"""YAML for pipeline and params files: the C loader when there is one, duplicate keys
refused, and the line of any value found again (only when an error needs it)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from cairn.errors import FormatError


@functools.cache
def loader() -> Any:
    """A safe loader that refuses a mapping with one key twice (PyYAML keeps the last;
    DVC's ruamel refuses, so a duplicated stage name must not pass silently)."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        pass

    def construct_map(self: Any, node: Any) -> Any:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise DuplicateKey(key_node.value, key_node.start_mark.line + 1)
                seen.add(key_node.value)
        return (yield from self.construct_yaml_map(node))

    Loader.add_constructor("tag:yaml.org,2002:map", construct_map)
    return Loader


class DuplicateKey(Exception):
    def __init__(self, key: str, line: int) -> None:
        super().__init__(key)
        self.key, self.line = key, line


def load(data: bytes | str, path: str) -> Any:
    """Parse `data` (the contents of `path`), or a FormatError naming path and line."""
    import yaml

    try:
        return yaml.load(data, Loader=loader())
    except DuplicateKey as e:
        raise FormatError(f"{e.key!r} is defined twice in one mapping (a stage, key or option "
                          "name must be unique there); keep one", path, e.line) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or "not valid YAML"
        context = getattr(e, "context", None)
        detail = f"{context}, {problem}" if context else problem
        raise FormatError(f"invalid YAML: {detail}", path, line) from None
    except UnicodeDecodeError:
        raise FormatError("not UTF-8 text", path) from None


def line_of(data: bytes | str, keypath: Sequence[str | int]) -> int | None:
    """The 1-based line of the value at `keypath` (mapping keys and list indexes); for a
    path that leads nowhere, the line of the deepest part that exists."""
    import yaml

    try:
        node = yaml.compose(data, Loader=loader())
    except (yaml.YAMLError, UnicodeDecodeError):
        return None
    line = None if node is None else node.start_mark.line + 1
    for step in keypath:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value
                          if isinstance(k, yaml.ScalarNode) and k.value == str(step)), None)
            if found is None:
                return line
            # a key's own line: where an unknown or mistyped key is written
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) \
                and 0 <= step < len(node.value):
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            return line
    return line
