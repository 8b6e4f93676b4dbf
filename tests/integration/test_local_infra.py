"""The test infrastructure itself: the fixtures start REAL processes, and infra.local/infra.topics work.

Every test here talks to a real PostgreSQL server or a real Kafka broker; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import pwd
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from typer.testing import CliRunner

from infra import cli
from infra.local import (
    LocalKafka,
    LocalPostgres,
    ensure_kafka_libs,
    process_alive,
    process_cmdline,
    read_state,
    state_path,
)
from infra.topics import TopicSpec, provision_topics

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------------ helpers


async def _partitions(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert described["error_code"] == 0, described
    return len(described["partitions"])


async def _topic_configs(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    [resource] = responses[0].to_object()["resources"]
    assert resource["error_code"] == 0, resource
    return {entry["config_names"]: entry["config_value"] for entry in resource["config_entries"]}


async def _round_trip(bootstrap: str, topic: str) -> None:
    """Produce one unique record and read it back with a consumer group; assert it is the same record."""
    key, value = b"stream-1", f"xin chào {uuid.uuid4()}".encode()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        received: list[Any] = []
        deadline = time.monotonic() + 30
        while not received and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                received.extend(records)
        await consumer.commit()  # exercises the group coordinator (__consumer_offsets) too
    finally:
        await consumer.stop()
    assert [(r.key, r.value, r.partition, r.offset) for r in received] == [(key, value, sent.partition, sent.offset)]


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


# ------------------------------------------------------------------------------------------------ Kafka


async def test_kafka_fixture_answers_a_produce_consume_round_trip(kafka_bootstrap: str, unique_topic: Any) -> None:
    topic = unique_topic("roundtrip")
    await provision_topics(kafka_bootstrap, [TopicSpec(topic, partitions=1)])
    await _round_trip(kafka_bootstrap, topic)


def _assert_real_kafka_jvm(pid: int, address: str) -> None:
    assert process_alive(pid)
    argv = process_cmdline(pid)
    assert "kafka.Kafka" in argv
    assert Path(argv[0]).name == "java"
    # the JVM's server.properties is the one that put the broker on this port
    properties = Path(argv[-1]).read_text()
    port = address.rsplit(":", 1)[1]
    assert f"listeners=PLAINTEXT://127.0.0.1:{port}," in properties
    assert "auto.create.topics.enable=false" in properties


def test_the_local_launcher_starts_a_real_kafka_jvm(kafka_service: Any) -> None:
    """Holds in every mode: the fixture's own broker when it started one, else a broker started here."""
    if kafka_service.source == "local":
        _assert_real_kafka_jvm(kafka_service.pid, kafka_service.address)
        return
    with LocalKafka(ensure_kafka_libs(REPO_ROOT)) as kafka:
        _assert_real_kafka_jvm(kafka.pid, kafka.bootstrap_servers)


# ------------------------------------------------------------------------------------------------ Postgres


async def test_postgres_fixture_answers_select_version(database_url: str, postgres_service: Any) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        version = await conn.fetchval("SELECT version()")
        data_directory = await conn.fetchval("SHOW data_directory")
        max_connections = await conn.fetchval("SHOW max_connections")
        fsync = await conn.fetchval("SHOW fsync")
    finally:
        await conn.close()
    assert version.startswith("PostgreSQL ")
    if postgres_service.source != "local":
        return
    assert version.startswith("PostgreSQL 15.")
    assert (max_connections, fsync) == ("200", "off")  # test tuning reached the server
    assert process_alive(postgres_service.pid)
    argv = process_cmdline(postgres_service.pid)
    assert Path(argv[0]).name == "postgres"
    # the server that answered is the process the fixture started
    assert argv[argv.index("-D") + 1] == data_directory
    if os.geteuid() == 0:
        assert _uid_of(postgres_service.pid) == pwd.getpwnam("postgres").pw_uid


async def test_fresh_database_is_a_new_empty_database_isolated_from_the_session_one(
    database_url: str, fresh_database: str
) -> None:
    table = f"probe_{uuid.uuid4().hex[:8]}"
    fresh = await asyncpg.connect(fresh_database)
    try:
        fresh_name = await fresh.fetchval("SELECT current_database()")
        user_tables = await fresh.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
        await fresh.execute(f"CREATE TABLE {table} (id int)")
    finally:
        await fresh.close()
    base = await asyncpg.connect(database_url)
    try:
        base_name = await base.fetchval("SELECT current_database()")
        visible = await base.fetchval("SELECT to_regclass($1)", table)
    finally:
        await base.close()
    assert fresh_name != base_name
    assert user_tables == 0
    assert visible is None


# ------------------------------------------------------------------------------------------------ topics


async def test_provision_topics_creates_topics_with_partitions_and_retention(
    kafka_bootstrap: str, unique_topic: Any
) -> None:
    thirty_days = 30 * 24 * 3600 * 1000
    events = TopicSpec(unique_topic("events"), partitions=3)
    indicators = TopicSpec(
        unique_topic("indicators"),
        partitions=2,
        retention_ms=thirty_days,
        extra_config={"max.message.bytes": "2097152"},
    )
    snapshots = TopicSpec(unique_topic("snapshots"), cleanup_policy="compact")

    created = await provision_topics(kafka_bootstrap, [events, indicators, snapshots])

    assert created == [events.name, indicators.name, snapshots.name]
    assert [await _partitions(kafka_bootstrap, s.name) for s in (events, indicators, snapshots)] == [3, 2, 1]
    events_cfg = await _topic_configs(kafka_bootstrap, events.name)
    indicators_cfg = await _topic_configs(kafka_bootstrap, indicators.name)
    snapshots_cfg = await _topic_configs(kafka_bootstrap, snapshots.name)
    assert (events_cfg["retention.ms"], events_cfg["cleanup.policy"]) == ("-1", "delete")
    assert indicators_cfg["retention.ms"] == str(thirty_days)
    assert indicators_cfg["max.message.bytes"] == "2097152"
    assert snapshots_cfg["cleanup.policy"] == "compact"
    # provisioned topics are usable at once
    await _round_trip(kafka_bootstrap, events.name)


async def test_provision_topics_is_idempotent_and_only_grows_partitions(
    kafka_bootstrap: str, unique_topic: Any
) -> None:
    spec = TopicSpec(unique_topic("grow"), partitions=2, retention_ms=3_600_000)
    assert await provision_topics(kafka_bootstrap, [spec]) == [spec.name]

    assert await provision_topics(kafka_bootstrap, [spec]) == []
    assert await _partitions(kafka_bootstrap, spec.name) == 2

    # more partitions in the spec: raised; a different retention: existing config left alone
    grown = dataclasses.replace(spec, partitions=4, retention_ms=1000)
    assert await provision_topics(kafka_bootstrap, [grown]) == []
    assert await _partitions(kafka_bootstrap, spec.name) == 4
    assert (await _topic_configs(kafka_bootstrap, spec.name))["retention.ms"] == "3600000"

    # fewer partitions in the spec: Kafka cannot shrink, nothing changes
    assert await provision_topics(kafka_bootstrap, [dataclasses.replace(spec, partitions=1)]) == []
    assert await _partitions(kafka_bootstrap, spec.name) == 4


async def test_concurrent_provisioners_create_each_topic_exactly_once(kafka_bootstrap: str, unique_topic: Any) -> None:
    specs = [TopicSpec(unique_topic("race"), partitions=2) for _ in range(3)]
    results = await asyncio.gather(*(provision_topics(kafka_bootstrap, specs) for _ in range(3)))
    created = [name for result in results for name in result]
    assert sorted(created) == sorted(s.name for s in specs)  # each name reported by exactly one caller
    for spec in specs:
        assert await _partitions(kafka_bootstrap, spec.name) == 2


# ------------------------------------------------------------------------------------------------ lifecycle


def test_local_postgres_stop_kills_the_server_and_removes_its_folder() -> None:
    pg = LocalPostgres(dbname="lifecycle").start()
    try:
        pid, workdir = pg.pid, pg.workdir
        assert process_alive(pid)
        assert pg.url.endswith("/lifecycle")
    finally:
        pg.stop()
    assert not process_alive(pid)
    assert not workdir.exists()


async def test_local_kafka_keeps_topics_across_restarts_in_a_kept_workdir() -> None:
    libs = await asyncio.to_thread(ensure_kafka_libs, REPO_ROOT)
    workdir = Path(tempfile.mkdtemp(prefix="chiso-kafka-kept-"))
    topic = f"kept.{uuid.uuid4().hex[:8]}"
    try:
        # start/stop block for seconds: keep them off the event loop
        first = await asyncio.to_thread(LocalKafka(libs, workdir=workdir).start)
        try:
            first_pid, cluster_id = first.pid, first.cluster_id
            await provision_topics(first.bootstrap_servers, [TopicSpec(topic, partitions=2)])
        finally:
            await asyncio.to_thread(first.stop)
        assert not process_alive(first_pid)
        assert await asyncio.to_thread(workdir.is_dir)  # a given workdir is kept

        second = await asyncio.to_thread(LocalKafka(libs, workdir=workdir).start)
        second_pid = second.pid
        try:
            assert second_pid != first_pid
            assert second.cluster_id == cluster_id  # not formatted again
            assert await provision_topics(second.bootstrap_servers, [TopicSpec(topic, partitions=2)]) == []
            assert await _partitions(second.bootstrap_servers, topic) == 2
        finally:
            await asyncio.to_thread(second.stop)
        assert not process_alive(second_pid)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_cli_up_status_env_down_manage_detached_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_LIBS_DIR", str(ensure_kafka_libs(REPO_ROOT)))
    # mkdtemp is 0700; PostgreSQL runs as 'postgres' and must traverse the root to reach .cache/infra
    root = Path(tempfile.mkdtemp(prefix="chiso-cli-"))
    root.chmod(0o755)
    runner = CliRunner()
    args = ["--root", str(root)]
    try:
        up = runner.invoke(cli.app, ["up", *args, "--kafka-port", "0", "--pg-port", "0"])
        assert up.exit_code == 0, up.output
        state = read_state(state_path(root))
        assert state is not None
        assert state.kafka is not None
        assert state.postgres is not None
        assert process_alive(state.kafka.pid)
        assert "kafka.Kafka" in process_cmdline(state.kafka.pid)
        assert process_alive(state.postgres.pid)
        assert f"export KAFKA_BOOTSTRAP_SERVERS={state.kafka.bootstrap_servers}" in up.stdout
        assert json.loads(state_path(root).read_text())["postgres"]["url"] == state.postgres.url

        status = runner.invoke(cli.app, ["status", *args])
        assert status.exit_code == 0, status.output
        env = runner.invoke(cli.app, ["env", *args])
        assert env.stdout.splitlines() == [
            f"export KAFKA_BOOTSTRAP_SERVERS={state.kafka.bootstrap_servers}",
            f"export DATABASE_URL={state.postgres.url}",
        ]
        again = runner.invoke(cli.app, ["up", *args, "--kafka-port", "0", "--pg-port", "0"])
        assert again.exit_code == 0, again.output
        assert read_state(state_path(root)) is not None
        assert read_state(state_path(root)).kafka.pid == state.kafka.pid  # type: ignore[union-attr]

        down = runner.invoke(cli.app, ["down", *args])
        assert down.exit_code == 0, down.output
        assert not process_alive(state.kafka.pid)
        assert not process_alive(state.postgres.pid)
        assert not state_path(root).exists()
        assert (root / ".cache" / "infra" / "postgres" / "data" / "PG_VERSION").exists()  # data kept

        assert runner.invoke(cli.app, ["status", *args]).exit_code == 1
    finally:
        runner.invoke(cli.app, ["down", *args, "--purge"])
        shutil.rmtree(root, ignore_errors=True)
