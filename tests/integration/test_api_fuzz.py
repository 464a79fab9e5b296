"""The /api/v1 API fuzzed from its own OpenAPI document (schemathesis): whatever a client
sends — within the schema or not — no answer is a 5xx, and every documented answer
conforms to its schema. Bounded: a few examples per operation, no shrinking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

pytestmark = pytest.mark.slow
EXAMPLES = 8  # per operation: ~60 operations, all of them under a minute


def test_no_input_makes_the_api_fail(tmp_path: Path) -> None:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    from cairn.commands.server import ServerConfig
    from cairn.server.app import create_app

    # In-process calls name the host "testserver", which the Host guard must know.
    app = create_app(ServerConfig(f"sqlite:///{tmp_path / 'fuzz.db'}",
                                  str(tmp_path / "artifacts"), allowed_hosts=("testserver",)))
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50, "every store operation is documented"
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        def fuzz(case: Any) -> None:
            case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

        try:
            fuzz()
        except Exception as e:  # one line per failing operation, all of them reported
            failures.append(f"{operation.label}: {str(e).strip().splitlines()[0][:300]}")
    assert not failures, "\n".join(failures)
