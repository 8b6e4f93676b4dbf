"""schemathesis against the running surveys service (real PostgreSQL and Kafka): no generated request —
responses with or without tokens and device ids, instrument look-ups, form pages — makes it answer 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from eventkit.service import ServiceSettings
from eventkit.settings import DatabaseSettings, KafkaSettings, LogSettings
from services.surveys.app import build_app
from services.surveys.settings import SurveysSettings
from tests.e2e.serving import serve_in_thread

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def service_url(database_url: str, kafka_bootstrap: str) -> Iterator[str]:
    """The whole surveys service in a thread of its own (schemathesis calls it synchronously)."""
    shell = ServiceSettings(
        "surveys",
        "surveys_fuzz",  # a schema of its own in the session database
        KafkaSettings(bootstrap_servers=kafka_bootstrap),
        DatabaseSettings(url=database_url),
        LogSettings(level="ERROR"),
    )
    own = SurveysSettings(token_secret="fuzz-test-key-0123456789abcdef", db_schema="surveys_fuzz")
    with serve_in_thread(build_app(own, shell), name="surveys") as url:
        yield url


def test_no_generated_request_makes_the_surveys_api_fail_with_a_5xx(service_url: str) -> None:
    # (as in the dossiers fuzz test: operations driven with hypothesis directly)
    schema = schemathesis.openapi.from_url(f"{service_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {op.path for op in operations}
    assert paths >= {
        "/v1/responses",
        "/v1/instruments",
        "/v1/instruments/{instrument_id}/versions/{version}",
        "/s/{token}",
    }
    calls = 0
    statuses: set[int] = set()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            nonlocal calls
            response = case.call(base_url=service_url)
            calls += 1
            statuses.add(response.status_code)
            assert response.status_code < 500, (
                f"{case.method} {case.path}: {response.status_code} {response.text[:500]}"
            )

        check()
    assert calls >= len(operations)
    assert statuses & {401, 422}  # the generated submissions did reach the checks
