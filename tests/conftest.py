"""Session fixtures: a REAL PostgreSQL server and a REAL Apache Kafka broker for integration and e2e tests.

Each one is chosen in this order (see /work/shared/KAFKA_LOCAL.md section D and infra/README.md):

1. an external service named by ``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS``;
2. testcontainers, if a Docker engine answers;
3. local processes from ``infra.local`` (PostgreSQL binaries; a Kafka JVM from Maven Central jars).

If none of them can start, the requesting test FAILS with the reasons: a suite that skips its broker tests
would go green without testing anything. Unit tests never request these fixtures, so they stay fast and
start nothing.
"""

from __future__ import annotations

import os
import re
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from infra.local import LocalKafka, LocalPostgres, docker_available, ensure_kafka_libs

REPO_ROOT = Path(__file__).resolve().parents[1]

# the dossiers service refuses to start without a pseudonym key; tests use a fixed, obviously fake one
os.environ.setdefault("DOSSIERS_PSEUDONYM_SECRET", "test-only-pseudonym-key-not-a-secret")

# testcontainers' KafkaContainer drives Confluent's cp-kafka start scripts; 7.6.0 is the version its KRaft
# mode is written and tested against (override to try another tag).
_TC_KAFKA_IMAGE = os.environ.get("CHISO_TEST_KAFKA_IMAGE", "confluentinc/cp-kafka:7.6.0")
_TC_POSTGRES_IMAGE = os.environ.get("CHISO_TEST_POSTGRES_IMAGE", "postgres:15")

Source = Literal["env", "testcontainers", "local"]


@dataclass(frozen=True)
class ServiceHandle:
    """Where a test service runs and who started it (``pid`` is set only for our own local process)."""

    address: str
    source: Source
    pid: int | None = None
    workdir: Path | None = None


def _testcontainers_class(module: str, name: str) -> Any:
    # 4.15 moved the classes to testcontainers.community.*; the old paths still work with a warning
    try:
        mod = __import__(f"testcontainers.community.{module}", fromlist=[name])
    except ImportError:
        mod = __import__(f"testcontainers.{module}", fromlist=[name])
    return getattr(mod, name)


@pytest.fixture(scope="session")
def docker_engine() -> bool:
    """Probed once per session, and only by fixtures that have no environment override."""
    return docker_available()


@pytest.fixture(scope="session")
def postgres_service(request: pytest.FixtureRequest) -> Iterator[ServiceHandle]:
    """The PostgreSQL server of this test session (env → testcontainers → local cluster)."""
    if url := os.environ.get("DATABASE_URL"):
        yield ServiceHandle(url, "env")
        return
    failures: list[str] = []
    with ExitStack() as stack:
        handle: ServiceHandle | None = None
        if request.getfixturevalue("docker_engine"):
            try:
                container_cls = _testcontainers_class("postgres", "PostgresContainer")
                container = stack.enter_context(container_cls(_TC_POSTGRES_IMAGE, driver=None))
                handle = ServiceHandle(container.get_connection_url(), "testcontainers")
            except Exception as exc:  # e.g. the image cannot be pulled: fall back to local processes
                failures.append(f"testcontainers {_TC_POSTGRES_IMAGE}: {exc!r}")
        if handle is None:
            if failures:
                warnings.warn(f"falling back to a local PostgreSQL: {failures[-1]}", stacklevel=1)
            try:
                pg = stack.enter_context(LocalPostgres(dbname="chiso_test"))
                handle = ServiceHandle(pg.url, "local", pg.pid, pg.workdir)
            except Exception as exc:
                failures.append(f"local PostgreSQL (infra.local.LocalPostgres): {exc}")
        if handle is None:
            pytest.fail(
                "No PostgreSQL for the integration tests. Set DATABASE_URL, run a Docker engine, or install "
                "the PostgreSQL 15 server binaries (apt-get install postgresql-15). Attempts:\n" + "\n".join(failures),
                pytrace=False,
            )
        yield handle


@pytest.fixture(scope="session")
def kafka_service(request: pytest.FixtureRequest) -> Iterator[ServiceHandle]:
    """The Kafka broker of this test session (env → testcontainers → local KRaft JVM)."""
    if servers := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield ServiceHandle(servers, "env")
        return
    failures: list[str] = []
    with ExitStack() as stack:
        handle: ServiceHandle | None = None
        if request.getfixturevalue("docker_engine"):
            try:
                container_cls = _testcontainers_class("kafka", "KafkaContainer")
                container = (
                    container_cls(_TC_KAFKA_IMAGE)
                    .with_kraft()
                    # same rule as the local broker: topics exist only if provisioned
                    .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
                )
                stack.enter_context(container)
                handle = ServiceHandle(container.get_bootstrap_server(), "testcontainers")
            except Exception as exc:
                failures.append(f"testcontainers {_TC_KAFKA_IMAGE}: {exc!r}")
        if handle is None:
            if failures:
                warnings.warn(f"falling back to a local Kafka broker: {failures[-1]}", stacklevel=1)
            try:
                # first run on a fresh clone: Maven resolves the broker jars (~20 s, needs Maven Central)
                libs = ensure_kafka_libs(REPO_ROOT)
                kafka = stack.enter_context(LocalKafka(libs))
                handle = ServiceHandle(kafka.bootstrap_servers, "local", kafka.pid, kafka.workdir)
            except Exception as exc:
                failures.append(f"local Kafka (infra.local.LocalKafka): {exc}")
        if handle is None:
            pytest.fail(
                "No Kafka broker for the integration tests. Set KAFKA_BOOTSTRAP_SERVERS, run a Docker "
                "engine, or let `chiso infra fetch-kafka` resolve the broker jars (needs mvn, Java 17 and "
                "Maven Central). Attempts:\n" + "\n".join(failures),
                pytrace=False,
            )
        yield handle


@pytest.fixture(scope="session")
def database_url(postgres_service: ServiceHandle) -> str:
    """``postgresql://`` URL of a database on the session's PostgreSQL server."""
    return postgres_service.address


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_service: ServiceHandle) -> str:
    """``host:port`` bootstrap servers of the session's Kafka broker."""
    return kafka_service.address


def _with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


@pytest.fixture
async def fresh_database(database_url: str) -> AsyncIterator[str]:
    """URL of a brand-new, empty database on the session server, dropped after the test.

    One server per session (starting PostgreSQL is the slow part), one database per test (CREATE DATABASE
    copies template1 in a few ms): tests cannot see each other's tables, checkpoints or outbox rows.
    """
    name = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield _with_database(database_url, name)
    finally:
        conn = await asyncpg.connect(database_url)
        try:
            # FORCE: a test that forgot to close its pool must not make the teardown fail
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture
def unique_topic(request: pytest.FixtureRequest) -> Callable[..., str]:
    """Factory of topic names no other test (or earlier run against a kept broker) has used.

    ``unique_topic("vn.cchc.dossiers.events")`` → ``vn.cchc.dossiers.events.<test-name>.<8 hex>``.
    """
    test_name = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:60]

    def make(prefix: str = "test") -> str:
        return f"{prefix}.{test_name}.{uuid.uuid4().hex[:8]}"

    return make
