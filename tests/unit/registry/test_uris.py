"""models:/ and runs:/ URIs: every form parses; a malformed one says what is expected."""

from __future__ import annotations

import pytest

from cairn.errors import UserError
from cairn.registry.uris import ModelsUri, RunsUri, parse


@pytest.mark.parametrize(("uri", "expected"), [
    ("models:/fraud/3", ModelsUri("fraud", version=3)),
    ("models:/fraud/Production", ModelsUri("fraud", stage="Production")),
    ("models:/fraud/production", ModelsUri("fraud", stage="Production")),
    ("models:/fraud/STAGING", ModelsUri("fraud", stage="Staging")),
    ("models:/fraud/latest", ModelsUri("fraud", latest=True)),
    ("models:/fraud@champion", ModelsUri("fraud", alias="champion")),
    ("models:/team/fraud/2", ModelsUri("team/fraud", version=2)),
    ("runs:/abc123/model", RunsUri("abc123", "model")),
    ("runs:/abc123/sub/dir/model.onnx", RunsUri("abc123", "sub/dir/model.onnx")),
])
def test_uri_forms(uri: str, expected: object) -> None:
    assert parse(uri) == expected


@pytest.mark.parametrize("uri", [
    "models:/fraud", "models:/fraud/", "models:/fraud/Prod", "models:/@alias",
    "models:/fraud@", "runs:/abc123", "runs:/abc123/", "s3://bucket/model", "fraud/3",
    "runs:/abc/../../etc",
])
def test_malformed_uris_are_one_line_errors_showing_the_forms(uri: str) -> None:
    with pytest.raises(UserError) as e:
        parse(uri)
    message = str(e.value)
    assert "\n" not in message
    assert "models:/NAME/VERSION" in message or "must stay inside" in message
