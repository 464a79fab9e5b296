"""The canonical text of Cairn's own YAML files, read and written without PyYAML.

Importing PyYAML is a good part of a command's start-up, and parsing with it most of a
clean `repro`'s time. So pointer files and `cairn.lock` are read by hand when they are
exactly in the form Cairn writes (anything else — quotes, comments, flow style — goes
to PyYAML), and `cairn.lock` is written by hand. These are the rules both readers and
the writer share: which unquoted text YAML reads back as that very string, and how one
value is written on one line.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Unquoted text made of these characters, one space or comma between words…
_PLAIN = re.compile(r"(?:[A-Za-z0-9_/]|\.\.?/)[A-Za-z0-9_./@+=\-]*(?:[ ,][A-Za-z0-9_./@+=\-]+)*")
# …is a string to YAML 1.1 unless it reads as a bool, null, number, date or 0x/0b/0o int.
_NOT_STRING = re.compile(r"(?i)y|n|yes|no|true|false|on|off|null|[-+0-9.][0-9._:eE+\-]*"
                         r"|0[box][0-9a-f_]+")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_FLOAT_EXP = re.compile(r"-?[0-9]+\.[0-9]+e[-+][0-9]+")  # how PyYAML writes 1e-05
_LITERALS: dict[str, Any] = {"null": None, "true": True, "false": False}


class NotCanonical(Exception):
    """The text is not in the form Cairn writes: leave it to PyYAML."""


def reads_as_string(text: str) -> bool:
    """Does YAML read `text`, unquoted, as exactly this string?"""
    return _PLAIN.fullmatch(text) is not None and _NOT_STRING.fullmatch(text) is None


def parse_scalar(text: str) -> Any:
    """A value as `scalar_text` writes it; NotCanonical for the forms left to PyYAML."""
    if text.startswith('"'):
        return json.loads(text)
    if text in _LITERALS:
        return _LITERALS[text]
    if _NUMBER.fullmatch(text) or _FLOAT_EXP.fullmatch(text):
        return float(text) if "." in text else int(text)
    if reads_as_string(text):
        return text
    raise NotCanonical


def parse_pair(line: str, indent: int) -> tuple[str, str]:
    """``key: value`` at exactly `indent` spaces (value may be empty)."""
    if line[:indent] != " " * indent or line[indent:indent + 1] in (" ", ""):
        raise NotCanonical
    text = line[indent:]
    if text.startswith('"'):
        key, end = json.JSONDecoder().raw_decode(text)
        rest = text[end:]
    else:
        key, sep, rest = text.partition(":")
        rest = sep + rest
        if not reads_as_string(key):
            raise NotCanonical
    if rest == ":":
        return key, ""
    if not rest.startswith(": "):
        raise NotCanonical
    return key, rest[2:]


def key_text(key: Any) -> str:
    return scalar_text(key if isinstance(key, str) else str(key))


def scalar_text(value: Any) -> str:
    """One YAML value on one line, read back as exactly `value`."""
    if isinstance(value, str):
        # quoted when it starts with a digit too: the form `cairn.lock` has always had
        if reads_as_string(value) and not value[0].isdigit():
            return value
        text = json.dumps(value, ensure_ascii=False)  # also valid YAML, escapes and all
        if text.isprintable():
            return text
        # What JSON leaves raw but YAML refuses to read (DEL, C1 controls, U+2028…).
        return "".join(c if c.isprintable() else
                       f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}"
                       for c in text)
    elif value is None:
        return "null"
    elif isinstance(value, bool):
        return "true" if value else "false"
    elif isinstance(value, int):
        return str(value)
    elif isinstance(value, float) and math.isfinite(value) and _NUMBER.fullmatch(repr(value)):
        return repr(value)
    return _flow(value)


def _flow(value: Any) -> str:
    """Anything else (lists, mappings, 1e-05, odd strings): PyYAML, in flow style."""
    from cairn import yamlfile

    text = yamlfile.dump(value, default_flow_style=True, width=1 << 30, allow_unicode=True)
    return text.removesuffix("\n...\n").strip()
