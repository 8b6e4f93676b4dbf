"""schemathesis against the running dossiers service (real PostgreSQL and Kafka): no generated request —
facts, dossier lookups, due dates — makes the API answer 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from eventkit.service import ServiceSettings
from eventkit.settings import DatabaseSettings, KafkaSettings, LogSettings
from services.dossiers.app import build_app
from services.dossiers.settings import DossiersSettings
from tests.e2e.serving import serve_in_thread

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def service_url(database_url: str, kafka_bootstrap: str) -> Iterator[str]:
    """The whole dossiers service in a thread of its own (schemathesis calls it synchronously)."""
    shell = ServiceSettings(
        "dossiers",
        "dossiers_fuzz",  # a schema of its own in the session database
        KafkaSettings(bootstrap_servers=kafka_bootstrap),
        DatabaseSettings(url=database_url),
        LogSettings(level="ERROR"),
    )
    own = DossiersSettings(pseudonym_secret="fuzz-test-key-0123456789abcdef", db_schema="dossiers_fuzz")
    with serve_in_thread(build_app(own, shell), name="dossiers") as url:
        yield url


def test_no_generated_request_makes_the_dossiers_api_fail_with_a_5xx(service_url: str) -> None:
    # (schemathesis' lazy pytest fixture loader does not work with this pytest; the operations are driven
    # with hypothesis directly, which is what its parametrize does)
    schema = schemathesis.openapi.from_url(f"{service_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/facts", "/v1/dossiers/{dossier_id}", "/v1/due-date"}
    calls = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            nonlocal calls
            response = case.call(base_url=service_url)
            calls += 1
            assert response.status_code < 500, (
                f"{case.method} {case.path}: {response.status_code} {response.text[:500]}"
            )

        check()
    assert calls >= len(operations)
