"""project.canonical: the hand-written readers and writer agree with PyYAML."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import yaml

from cairn.project.canonical import NotCanonical, parse_scalar, reads_as_string, scalar_text

TEXTS = ["model.pkl", "data/raw", "./a", "../shared", "with space", "a,b", "2024/data.csv",
         "123", "1.5", "1e5", "0x1f", "0b101", "1_000", "2001-12-14", "yes", "No", "ON",
         "null", "Null", "~", "-rf", ".inf", "a: b", "#x", "@x", "ümlaut", "y", "n", ""]


@pytest.mark.parametrize("text", TEXTS)
def test_text_read_as_a_string_is_that_string_to_yaml(text: str) -> None:
    if reads_as_string(text):
        assert yaml.safe_load(f"k: {text}\n") == {"k": text}


@pytest.mark.parametrize("value", [*TEXTS, 0, -3, 1.5, 1e-05, True, None, [1, "a"],
                                   {"k": [1.0]}, "tab\there", "line\nbreak", "\u2028"])
def test_a_written_scalar_reads_back_exactly(value: Any) -> None:
    text = scalar_text(value)
    assert "\n" not in text
    assert yaml.safe_load(f"k: {text}\n") == {"k": value}
    with contextlib.suppress(NotCanonical):  # left to PyYAML: lists, mappings, odd strings
        assert parse_scalar(text) == value


def test_the_lock_writer_quotes_a_leading_digit_as_it_always_has() -> None:
    assert scalar_text("2024/data.csv") == '"2024/data.csv"'
    assert reads_as_string("2024/data.csv")  # while the readers accept it unquoted
