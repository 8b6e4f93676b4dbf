"""Pure parts of infra/: cluster ids, server.properties, the state file, topic specs, the jar fetcher's edges.

No broker, no database: these run in milliseconds (the fake ``mvn`` below is a shell script).
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra import cli, local
from infra.local import (
    InfraState,
    KafkaRecord,
    PostgresRecord,
    ensure_kafka_libs,
    env_lines,
    find_repo_root,
    kafka_cluster_id,
    read_state,
    render_server_properties,
    state_path,
    wait_port,
    write_state,
)
from infra.topics import TopicSpec


def _parse_properties(text: str) -> dict[str, str]:
    lines = (line.partition("=") for line in text.splitlines() if line and not line.startswith("#"))
    return {key: value for key, _, value in lines}


# ------------------------------------------------------------------------------------------------ cluster id


def test_cluster_id_has_kafkas_uuid_format() -> None:
    for _ in range(500):
        cid = kafka_cluster_id()
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cid), cid
        assert not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_cluster_id_is_redrawn_when_it_would_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    dash_first = uuid.UUID(bytes=b"\xf8" + b"\x00" * 15)  # 0b111110.. encodes to '-' in URL-safe base64
    normal = uuid.UUID(bytes=b"\x00" * 16)
    draws = iter([dash_first, normal])
    monkeypatch.setattr(local.uuid, "uuid4", lambda: next(draws))
    assert base64.urlsafe_b64encode(dash_first.bytes).startswith(b"-")
    assert kafka_cluster_id() == "AAAAAAAAAAAAAAAAAAAAAA"


# ------------------------------------------------------------------------------------------------ properties


def test_server_properties_describe_one_combined_node_on_localhost(tmp_path: Path) -> None:
    props = _parse_properties(render_server_properties(data_dir=tmp_path / "data", port=19092, controller_port=19093))
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    # validated by KafkaConfig: the inter-broker listener must be advertised, the controller one must not be
    assert props["inter.broker.listener.name"] + "://" in props["advertised.listeners"]
    assert "CONTROLLER" not in props["advertised.listeners"]
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["auto.create.topics.enable"] == "false"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
        "offsets.topic.num.partitions",
        "transaction.state.log.num.partitions",
    ):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert int(props["log.cleaner.dedupe.buffer.size"]) == 16 * 1024 * 1024
    assert "0.0.0.0" not in render_server_properties(data_dir=tmp_path, port=1, controller_port=2)


def test_server_properties_overrides_win_and_backslashes_are_escaped(tmp_path: Path) -> None:
    text = render_server_properties(
        data_dir=tmp_path,
        port=1,
        controller_port=2,
        overrides={"auto.create.topics.enable": "true", "log.retention.hours": "1", "x.path": r"C:\kafka"},
    )
    props = _parse_properties(text)
    assert props["auto.create.topics.enable"] == "true"
    assert props["log.retention.hours"] == "1"
    assert props["x.path"] == r"C:\\kafka"
    assert text.count("auto.create.topics.enable=") == 1


def test_log4j_config_lets_the_started_line_through() -> None:
    assert "logger.raftserver.name = kafka.server.KafkaRaftServer" in local.LOG4J2_PROPERTIES
    assert "logger.raftserver.level = info" in local.LOG4J2_PROPERTIES


# ------------------------------------------------------------------------------------------------ state file


def _state() -> InfraState:
    return InfraState(
        started_at=1_700_000_000.5,
        postgres=PostgresRecord(
            pid=101,
            port=5432,
            url="postgresql://postgres@127.0.0.1:5432/chiso",
            workdir="/w/pg",
            data_dir="/w/pg/data",
            log_path="/w/pg/postgres.log",
        ),
        kafka=KafkaRecord(
            pid=202,
            port=9092,
            controller_port=9093,
            bootstrap_servers="127.0.0.1:9092",
            workdir="/w/kafka",
            log_path="/w/kafka/kafka.log",
            cluster_id="AAAAAAAAAAAAAAAAAAAAAA",
        ),
    )


def test_state_file_round_trips(tmp_path: Path) -> None:
    path = state_path(tmp_path)
    assert path == tmp_path / ".cache" / "infra" / "state.json"
    assert read_state(path) is None
    write_state(path, _state())
    assert read_state(path) == _state()
    assert not path.with_suffix(".json.tmp").exists()


def test_state_file_round_trips_a_partial_stack(tmp_path: Path) -> None:
    state = InfraState(started_at=1.0, postgres=None, kafka=_state().kafka)
    write_state(tmp_path / "s.json", state)
    assert read_state(tmp_path / "s.json") == state


def test_env_lines_are_shell_safe_exports() -> None:
    assert env_lines(_state()) == [
        "export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092",
        "export DATABASE_URL=postgresql://postgres@127.0.0.1:5432/chiso",
    ]
    odd = InfraState(started_at=0, postgres=None, kafka=None)
    assert env_lines(odd) == []
    weird = _state().postgres
    assert weird is not None
    quoted = env_lines(InfraState(started_at=0, postgres=PostgresRecord(**{**weird.__dict__, "url": "a b;c"})))
    out = subprocess.run(
        ["sh", "-c", f'{quoted[0]}; printf %s "$DATABASE_URL"'], capture_output=True, text=True, check=True
    )
    assert out.stdout == "a b;c"


def test_cli_env_prints_exports_and_fails_without_state(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli.app, ["env", "--root", str(tmp_path)]).exit_code == 1
    write_state(state_path(tmp_path), _state())
    result = runner.invoke(cli.app, ["env", "--root", str(tmp_path)])
    assert result.exit_code == 0
    assert result.stdout.splitlines() == env_lines(_state())


def test_cli_status_reports_dead_recorded_processes(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    state = _state()
    assert state.kafka is not None
    write_state(
        state_path(tmp_path),
        InfraState(started_at=0, kafka=KafkaRecord(**{**state.kafka.__dict__, "pid": dead.pid})),
    )
    result = CliRunner().invoke(cli.app, ["status", "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert "dead" in result.stdout


def test_importing_the_cli_starts_nothing() -> None:
    code = "import infra.cli, sys; print(sorted(m for m in sys.modules if m in {'rich.console','asyncpg','aiokafka'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "aiokafka" not in out.stdout
    assert "asyncpg" not in out.stdout


# ------------------------------------------------------------------------------------------------ helpers


def test_wait_port_fails_fast_with_the_log_tail_when_the_process_dies(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("boom: bad config\n")
    proc = subprocess.Popen(["sh", "-c", "exit 3"])
    with pytest.raises(RuntimeError, match=r"(?s)code 3.*boom: bad config"):
        wait_port(local.free_port(), 30, proc=proc, log_path=log)


def test_wait_port_times_out_on_a_closed_port() -> None:
    with pytest.raises(TimeoutError):
        wait_port(local.free_port(), 0.3)


def test_process_alive_tells_running_from_finished() -> None:
    assert local.process_alive(os.getpid())
    finished = subprocess.Popen(["true"])
    finished.wait()
    assert not local.process_alive(finished.pid)
    assert local.process_cmdline(os.getpid())[0].endswith(("python", "python3", "python3.11"))


def test_stop_process_group_refuses_a_pid_running_something_else() -> None:
    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        # until the child has exec'd, its command line is still ours (a loaded machine made this race real)
        for _ in range(200):
            if local.process_cmdline(sleeper.pid)[:1] == ["sleep"]:
                break
            time.sleep(0.01)
        assert not local.stop_process_group(sleeper.pid, expect="kafka.Kafka")
        assert local.process_alive(sleeper.pid)
        assert local.stop_process_group(sleeper.pid, expect="sleep", timeout=5)
        sleeper.wait(5)
        assert sleeper.returncode == -15  # SIGTERM, no need for SIGKILL
    finally:
        sleeper.kill()
        sleeper.wait()


def test_find_repo_root_walks_up_from_a_subfolder() -> None:
    repo = Path(__file__).resolve().parents[2]
    assert find_repo_root(repo / "tests" / "unit") == repo


# ------------------------------------------------------------------------------------------------ jars


def _fake_mvn(bin_dir: Path, script: str) -> None:
    bin_dir.mkdir()
    mvn = bin_dir / "mvn"
    mvn.write_text("#!/bin/sh\n" + script)
    mvn.chmod(0o755)


def test_ensure_kafka_libs_is_a_no_op_when_the_jar_is_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    libs = tmp_path / "libs"
    libs.mkdir()
    (libs / "kafka_2.13-4.1.1.jar").write_bytes(b"")
    monkeypatch.setenv("KAFKA_LIBS_DIR", str(libs))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # Maven unreachable: must not be needed
    assert ensure_kafka_libs(tmp_path / "repo") == libs


def test_ensure_kafka_libs_reports_missing_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_LIBS_DIR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RuntimeError, match="mvn"):
        ensure_kafka_libs(tmp_path)


def test_ensure_kafka_libs_raises_with_mavens_output_and_leaves_nothing_half_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAFKA_LIBS_DIR", raising=False)
    # a Maven that writes one jar into the staging folder and then fails, like a dropped connection
    _fake_mvn(
        tmp_path / "bin",
        'for a in "$@"; do case "$a" in -Dkafka.libs.dir=*) d="${a#-Dkafka.libs.dir=}";; esac; done\n'
        'mkdir -p "$d" && touch "$d/kafka_2.13-4.1.1.jar"\n'
        'echo "[ERROR] Could not transfer artifact org.apache.kafka:kafka-server:jar:4.1.1"\nexit 1\n',
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(RuntimeError, match=r"(?s)exit 1.*Could not transfer artifact"):
        ensure_kafka_libs(tmp_path)
    assert not local.has_kafka_libs(tmp_path / ".cache" / "kafka-libs")
    assert not (tmp_path / ".cache" / "kafka-libs.partial").exists()


def test_ensure_kafka_libs_runs_the_pinned_dependency_plugin_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAFKA_LIBS_DIR", raising=False)
    calls = tmp_path / "calls"
    _fake_mvn(
        tmp_path / "bin",
        f'echo "$@" >> {calls}\n'
        'for a in "$@"; do case "$a" in -Dkafka.libs.dir=*) d="${a#-Dkafka.libs.dir=}";; esac; done\n'
        'mkdir -p "$d" && touch "$d/kafka_2.13-4.1.1.jar" "$d/kafka-server-4.1.1.jar"\n',
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    libs = ensure_kafka_libs(tmp_path)
    assert libs == tmp_path / ".cache" / "kafka-libs"
    assert sorted(p.name for p in libs.iterdir()) == ["kafka-server-4.1.1.jar", "kafka_2.13-4.1.1.jar"]
    assert ensure_kafka_libs(tmp_path) == libs
    [call] = calls.read_text().splitlines()  # the second call did not run Maven
    assert "-B" in call.split()
    assert "-q" in call.split()
    assert "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies" in call
    assert call.split()[call.split().index("-f") + 1].endswith("infra/kafka/pom.xml")


# ------------------------------------------------------------------------------------------------ topic specs


def test_topic_spec_config_keeps_forever_by_default() -> None:
    assert TopicSpec("vn.cchc.plans.events", partitions=12).topic_config() == {
        "cleanup.policy": "delete",
        "retention.ms": "-1",
    }
    spec = TopicSpec("a", retention_ms=86_400_000, cleanup_policy="compact", extra_config={"segment.ms": "1"})
    assert spec.topic_config() == {"cleanup.policy": "compact", "retention.ms": "86400000", "segment.ms": "1"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "has space"},
        {"name": ""},
        {"name": "x" * 250},
        {"name": ".."},
        {"name": "ok", "partitions": 0},
        {"name": "ok", "retention_ms": 0},
        {"name": "ok", "cleanup_policy": "forever"},
        {"name": "ok", "extra_config": {"retention.ms": "5"}},
    ],
)
def test_topic_spec_rejects_what_kafka_would_reject(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # the message varies per case
        TopicSpec(**kwargs)  # type: ignore[arg-type]
