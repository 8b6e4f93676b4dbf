"""Real PostgreSQL 15 and Apache Kafka (KRaft) processes on 127.0.0.1, without Docker.

The project's machines have no Docker engine and cannot download the Apache Kafka tarball, so the broker is
assembled from Maven Central jars (``infra/kafka/pom.xml``) and launched as a plain JVM, and PostgreSQL runs
from the Debian binaries in a private data directory. Everything here is blocking on purpose: it is called
from pytest session fixtures and from the ``chiso infra`` CLI, never from inside an event loop.

Nothing is started or computed at import time.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = [
    "DEFAULT_HEAP",
    "KAFKA_STARTED_MARKER",
    "LOG4J2_PROPERTIES",
    "LONG_RUNNING_JVM_FLAGS",
    "TEST_JVM_FLAGS",
    "InfraState",
    "KafkaRecord",
    "LocalKafka",
    "LocalPostgres",
    "PostgresRecord",
    "docker_available",
    "ensure_kafka_libs",
    "env_lines",
    "find_repo_root",
    "free_port",
    "has_kafka_libs",
    "kafka_cluster_id",
    "kafka_libs_dir",
    "log_tail",
    "pg_bindir",
    "pg_ctl_stop",
    "port_open",
    "process_alive",
    "process_cmdline",
    "read_state",
    "render_server_properties",
    "state_path",
    "stop_process_group",
    "wait_port",
    "write_state",
]

LOCALHOST = "127.0.0.1"

#: Logged by ``kafka.server.KafkaRaftServer`` once the broker serves clients (``KafkaBroker.STARTED_MESSAGE``).
KAFKA_STARTED_MARKER = "Kafka Server started"

#: The shipped broker default is ``-Xmx1G -Xms1G``; 512 MiB is plenty once the log cleaner's dedupe buffer
#: (allocated on the heap, 128 MiB by default) is lowered in ``server.properties``.
DEFAULT_HEAP = "-Xms256m -Xmx512m"

#: Start fast on 2 cores: SerialGC and C1-only JIT cut the broker's start-up time; fine for short test runs.
TEST_JVM_FLAGS: tuple[str, ...] = (
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)
#: For a broker that lives for hours (``chiso infra up``): keep the JVM's default GC and full JIT so
#: throughput is representative, at the cost of a slower start.
LONG_RUNNING_JVM_FLAGS: tuple[str, ...] = ("-Djava.awt.headless=true",)

#: Properties format is built into log4j-core (no YAML jars needed). Without a configuration log4j2 prints
#: only ERRORs and the readiness line below would never appear.
LOG4J2_PROPERTIES = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = STDOUT
logger.raftserver.name = kafka.server.KafkaRaftServer
logger.raftserver.level = info
"""

_KAFKA_MAIN = "kafka.Kafka"
_STORAGE_TOOL = "kafka.tools.StorageTool"
_KAFKA_JAR_GLOB = "kafka_2.13-*.jar"
_MAVEN_GOAL = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
_DBNAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# sun_path is 108 bytes on Linux; PostgreSQL's socket file name adds ``/.s.PGSQL.NNNNN``.
_MAX_SOCKET_DIR_LEN = 90


# --------------------------------------------------------------------------------------------------------
# small helpers


def free_port() -> int:
    """Ask the kernel for a currently unused TCP port on 127.0.0.1.

    There is a small window before the caller binds it; acceptable for tests on one machine.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOCALHOST, 0))
        port: int = s.getsockname()[1]
        return port


def port_open(port: int, host: str = LOCALHOST, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(path: Path | None, chars: int = 4000) -> str:
    """The last ``chars`` characters of a log file, or "" when it does not exist."""
    if path is None:
        return ""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - chars))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def wait_port(
    port: int,
    timeout: float,
    *,
    host: str = LOCALHOST,
    proc: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
) -> None:
    """Block until ``host:port`` accepts connections.

    Fails fast (RuntimeError with the log tail) if ``proc`` exits first, and raises TimeoutError after
    ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode}\n{log_tail(log_path)}")
        if port_open(port, host):
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{host}:{port} not listening after {timeout}s (log: {log_path})")
        time.sleep(0.1)


def process_alive(pid: int) -> bool:
    """True if ``pid`` is a running process (zombies count as dead: nobody may have reaped them yet)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (not Linux): fall back to a signal-0 probe
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # the command name is in parentheses and may contain spaces; the state is the field after it
    state = raw.rsplit(")", 1)[-1].split()[0]
    return state not in {"Z", "X"}


def process_cmdline(pid: int) -> list[str]:
    """The argv of ``pid`` as read from /proc, or [] if it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", errors="replace") for part in raw.split(b"\0") if part]


def _wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def stop_process_group(pid: int, *, timeout: float = 30.0, expect: str | None = None) -> bool:
    """Stop a process that is not our child (e.g. recorded in the state file): SIGTERM, then SIGKILL.

    Signals the whole process group when ``pid`` leads one (our JVMs are started with
    ``start_new_session=True``). If ``expect`` is given and does not occur in the process's command line,
    the pid was reused by something else and nothing is signalled. Returns True if something was stopped.
    """
    if not process_alive(pid):
        return False
    if expect is not None and expect not in " ".join(process_cmdline(pid)):
        return False
    try:
        group = os.getpgid(pid) == pid
    except ProcessLookupError:
        return False

    def _signal(sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)

    _signal(signal.SIGTERM)
    if not _wait_dead(pid, timeout):
        _signal(signal.SIGKILL)
        _wait_dead(pid, 10.0)
    return True


def _stop_child(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM our child's process group (Kafka shuts down cleanly on it), SIGKILL after ``timeout``."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _assert_traversable(path: Path) -> None:
    """PostgreSQL runs as ``postgres``; every ancestor of its directory must be searchable by others."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            raise RuntimeError(
                f"{parent} (mode {stat.filemode(mode)}) is not traversable by the 'postgres' user, so "
                f"PostgreSQL cannot use {path}. Use a directory under /tmp, or `chmod o+x {parent}`."
            )


def find_repo_root(start: Path | None = None) -> Path:
    """The checkout holding ``infra/kafka/pom.xml``: searched from ``start`` (default: cwd) upwards, then
    next to this module (editable install)."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "infra" / "kafka" / "pom.xml").is_file():
            return candidate
    return Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------------------
# Docker probe


def docker_available() -> bool:
    """True if a Docker engine answers (testcontainers can run); False quickly otherwise."""
    try:
        import docker  # noqa: PLC0415  (optional dependency, and the probe must stay off the import path)

        client = docker.from_env(timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception:  # any failure (no socket, no package, timeout) means "no usable engine"
        return False
    return True


# --------------------------------------------------------------------------------------------------------
# Kafka jars from Maven Central


def kafka_libs_dir(repo_root: Path) -> Path:
    """Where the broker jars live: ``$KAFKA_LIBS_DIR`` or ``<repo>/.cache/kafka-libs``."""
    env = os.environ.get("KAFKA_LIBS_DIR")
    return Path(env).expanduser().resolve() if env else repo_root / ".cache" / "kafka-libs"


def has_kafka_libs(libs_dir: Path) -> bool:
    return libs_dir.is_dir() and any(libs_dir.glob(_KAFKA_JAR_GLOB))


def _pom_path() -> Path:
    # The pom ships inside the package (package-data), so this works for editable and regular installs.
    return Path(__file__).resolve().parent / "kafka" / "pom.xml"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock, so two pytest processes do not run Maven into the same folder at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_kafka_libs(repo_root: Path, *, quiet: bool = True) -> Path:
    """Return the folder of Kafka broker jars, resolving them with Maven first if they are missing.

    Idempotent: when a ``kafka_2.13-*.jar`` is present it returns at once. Maven copies into a staging folder
    that is renamed into place only on success, so an interrupted download never looks complete. Raises
    RuntimeError with the tail of Maven's output if resolution fails.
    """
    libs = kafka_libs_dir(repo_root)
    if has_kafka_libs(libs):
        return libs
    with _file_lock(libs.parent / f".{libs.name}.lock"):
        if has_kafka_libs(libs):  # another process finished while we waited for the lock
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError(
                "Maven (mvn) is not on PATH; it is needed once to fetch the Kafka broker jars from Maven "
                f"Central into {libs} (or set KAFKA_LIBS_DIR to a folder that already has them)."
            )
        staging = libs.with_name(f"{libs.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn,
            "-B",
            *(["-q"] if quiet else []),
            "-f",
            str(_pom_path()),
            _MAVEN_GOAL,
            f"-Dkafka.libs.dir={staging}",
        ]
        tail: deque[str] = deque(maxlen=60)
        with subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                tail.append(_ANSI_RE.sub("", line))  # Maven 3.8 emits colour resets even with -B
                if not quiet:
                    print(line, end="", flush=True)  # Maven progress for an interactive user
        if proc.returncode != 0 or not has_kafka_libs(staging):
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(
                f"Resolving the Kafka broker jars failed (exit {proc.returncode}): {shlex.join(cmd)}\n" + "".join(tail)
            )
        if libs.exists():  # an empty or broken folder without the broker jar
            shutil.rmtree(libs)
        staging.rename(libs)
    return libs


# --------------------------------------------------------------------------------------------------------
# Kafka


def kafka_cluster_id() -> str:
    """A cluster id exactly like Kafka's ``Uuid.randomUuid().toString()``, without launching a JVM.

    Kafka encodes 16 random bytes as URL-safe base64 without padding and re-draws ids starting with ``-``
    (they would look like a command-line flag).
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cid.startswith("-"):
            return cid


def _escape_property(value: str) -> str:
    # java.util.Properties treats backslash as an escape character in values
    return value.replace("\\", "\\\\")


def render_server_properties(
    *,
    data_dir: Path,
    port: int,
    controller_port: int,
    node_id: int = 1,
    overrides: Mapping[str, str] | None = None,
) -> str:
    """``server.properties`` for one combined broker+controller with a static quorum on 127.0.0.1."""
    props: dict[str, str] = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        # Static quorum: works with a plain `format -t ID` (no --standalone) and on Kafka 3.7 to 4.x.
        "controller.quorum.voters": f"{node_id}@{LOCALHOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{LOCALHOST}:{port},CONTROLLER://{LOCALHOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{LOCALHOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        # Topics are provisioned as code (infra.topics); a typo in a topic name must fail, not create one.
        "auto.create.topics.enable": "false",
        # One broker: every internal topic must accept replication factor 1.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # The defaults (50 partitions each) make the first consumer group / transaction slow on 2 cores.
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.num.partitions": "1",
        # Consumers in tests should get their partitions at once, not after the default 3 s delay.
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "2",
        # The cleaner allocates this buffer on the heap (default 128 MiB); it must fit in a 512 MiB heap.
        "log.cleaner.dedupe.buffer.size": "16777216",
    }
    props.update(overrides or {})
    return "".join(f"{key}={_escape_property(value)}\n" for key, value in props.items())


def _java() -> str:
    if os.environ.get("JAVA"):
        return os.environ["JAVA"]
    if os.environ.get("JAVA_HOME"):
        return str(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    return shutil.which("java") or "java"


def _read_meta_cluster_id(data_dir: Path) -> str | None:
    try:
        text = (data_dir / "meta.properties").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "cluster.id":
            return value.strip()
    return None


class LocalKafka:
    """A real single-node Apache Kafka broker (KRaft, broker+controller in one JVM) on 127.0.0.1.

    ``workdir=None`` (tests): a fresh ``/tmp/chiso-kafka-*`` folder, removed on :meth:`stop` unless
    ``keep_data``. With a ``workdir`` (``chiso infra up``) the folder is kept and reused: storage is only
    formatted the first time, so topics and offsets survive restarts.
    """

    def __init__(
        self,
        libs_dir: Path,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        workdir: Path | None = None,
        keep_data: bool = False,
        heap: str = DEFAULT_HEAP,
        jvm_flags: Sequence[str] = TEST_JVM_FLAGS,
        start_timeout: float = 120.0,
        stop_timeout: float = 30.0,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.libs_dir = libs_dir
        self._port = port
        self._controller_port = controller_port
        self._requested_workdir = workdir
        self.keep_data = keep_data or workdir is not None
        self.heap = heap
        self.jvm_flags = tuple(jvm_flags)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.overrides = dict(overrides or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        self.cluster_id: str | None = None

    # -- properties -------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("LocalKafka is not started")
        return self._port

    @property
    def controller_port(self) -> int:
        if self._controller_port is None:
            raise RuntimeError("LocalKafka is not started")
        return self._controller_port

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOCALHOST}:{self.port}"

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise RuntimeError("LocalKafka is not started")
        return self._workdir

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "kafka.log"

    @property
    def properties_path(self) -> Path:
        return self.workdir / "server.properties"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("LocalKafka is not started")
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _jvm(self, main: str, *args: str) -> list[str]:
        return [
            _java(),
            *self.heap.split(),
            *self.jvm_flags,
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            "-cp",
            f"{self.libs_dir}/*",  # expanded by the JVM itself, not by a shell
            main,
            *args,
        ]

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> Self:
        """Format storage (first time only), launch the JVM and block until the broker serves clients."""
        if self._proc is not None:
            raise RuntimeError("LocalKafka already started")
        if not has_kafka_libs(self.libs_dir):
            raise FileNotFoundError(f"no {_KAFKA_JAR_GLOB} in {self.libs_dir} (run ensure_kafka_libs first)")
        if self._requested_workdir is not None:
            self._requested_workdir.mkdir(parents=True, exist_ok=True)
            self._workdir = self._requested_workdir.resolve()
        else:
            self._workdir = Path(tempfile.mkdtemp(prefix="chiso-kafka-", dir="/tmp"))
        try:
            self._launch()
        except BaseException:
            self._cleanup()
            raise
        return self

    def _launch(self) -> None:
        if self._port is None:
            self._port = free_port()
        if self._controller_port is None:
            self._controller_port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.properties_path.write_text(
            render_server_properties(
                data_dir=self.data_dir,
                port=self.port,
                controller_port=self.controller_port,
                overrides=self.overrides,
            )
        )
        (self.workdir / "log4j2.properties").write_text(LOG4J2_PROPERTIES)

        self.cluster_id = _read_meta_cluster_id(self.data_dir)
        if self.cluster_id is None:
            self.cluster_id = kafka_cluster_id()
            fmt = self._jvm(_STORAGE_TOOL, "format", "-t", self.cluster_id, "-c", str(self.properties_path))
            result = subprocess.run(fmt, capture_output=True, text=True, timeout=120, check=False)
            if result.returncode != 0:
                raise RuntimeError(
                    f"kafka-storage format failed (exit {result.returncode}):\n"
                    f"{(result.stdout + result.stderr)[-4000:]}"
                )

        # A kept log is appended to; only lines written after this offset count as "this start".
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as out:
            self._proc = subprocess.Popen(
                self._jvm(_KAFKA_MAIN, str(self.properties_path)),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # own process group: stop() can signal the whole JVM tree, and `chiso infra up` can leave it
                # running after the CLI exits (no SIGHUP/SIGINT from the terminal's job control)
                start_new_session=True,
                cwd=self.workdir,
            )
        self._wait_started(offset)

    def _wait_started(self, log_offset: int) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        seen = ""
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"Kafka exited with code {self._proc.returncode} while starting; log {self.log_path}:\n"
                    f"{log_tail(self.log_path)}"
                )
            with self.log_path.open("rb") as f:
                f.seek(log_offset)
                seen = f.read().decode("utf-8", errors="replace")
            if KAFKA_STARTED_MARKER in seen and port_open(self.port):
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"Kafka not ready after {self.start_timeout}s (port {self.port}); log {self.log_path}:\n"
                    f"{log_tail(self.log_path)}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM the broker's process group (clean shutdown), SIGKILL after ``stop_timeout``; remove the
        temp folder unless data is kept. Safe to call twice."""
        self._cleanup()

    def _cleanup(self) -> None:
        if self._proc is not None:
            _stop_child(self._proc, self.stop_timeout)
            self._proc = None
        if self._workdir is not None and not self.keep_data:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def detach(self) -> int:
        """Forget the child without stopping it (it keeps running in its own session); return its pid."""
        pid = self.pid
        self._proc = None
        return pid

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------------------
# PostgreSQL


def pg_bindir() -> Path:
    """PostgreSQL's server binaries: ``$PG_BINDIR``, else ``pg_config --bindir``, else Debian's 15 path."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    try:
        out = subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return Path("/usr/lib/postgresql/15/bin")
    return Path(out.strip())


def _run_as_postgres() -> list[str]:
    # initdb and postgres refuse to run as root ("cannot be run as root").
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def pg_ctl_stop(data_dir: Path, *, bindir: Path | None = None, timeout: int = 60) -> bool:
    """``pg_ctl stop -m fast`` on a data directory; True if the server was running and stopped."""
    cmd = [
        *_run_as_postgres(),
        str((bindir or pg_bindir()) / "pg_ctl"),
        "-D",
        str(data_dir),
        "-m",
        "fast",
        "-w",
        "-t",
        str(timeout),
        "stop",
    ]
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


class LocalPostgres:
    """A PostgreSQL cluster of its own on 127.0.0.1 with trust authentication for user ``postgres``.

    ``durable=False`` (tests) turns off fsync, synchronous_commit and full_page_writes: a crash may lose or
    corrupt data, which is fine for a throw-away cluster and makes DDL-heavy tests much faster.
    ``workdir=None`` creates a fresh ``/tmp/chiso-pg-*`` folder (``/tmp`` because the ``postgres`` user must
    traverse every ancestor), removed on :meth:`stop` unless ``keep_data``; a given ``workdir`` is kept and
    reused (initdb runs only once).
    """

    def __init__(
        self,
        *,
        dbname: str = "test",
        port: int | None = None,
        workdir: Path | None = None,
        keep_data: bool = False,
        durable: bool = False,
        max_connections: int = 200,
        bindir: Path | None = None,
        start_timeout: int = 60,
    ) -> None:
        if not _DBNAME_RE.match(dbname):
            raise ValueError(f"invalid database name {dbname!r}")
        self.dbname = dbname
        self._port = port
        self._requested_workdir = workdir
        self.keep_data = keep_data or workdir is not None
        self.durable = durable
        self.max_connections = max_connections
        self._bindir = bindir
        self.start_timeout = start_timeout
        self._workdir: Path | None = None
        self._started = False

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = pg_bindir()
        return self._bindir

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("LocalPostgres is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{LOCALHOST}:{self.port}/{self.dbname}"

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise RuntimeError("LocalPostgres is not started")
        return self._workdir

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "postgres.log"

    @property
    def pid(self) -> int:
        """The postmaster's pid, from ``postmaster.pid`` (pg_ctl daemonizes it, so it is not our child)."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, IndexError, ValueError) as exc:
            raise RuntimeError("LocalPostgres is not running") from exc

    def start(self) -> Self:
        if self._started:
            raise RuntimeError("LocalPostgres already started")
        if self._requested_workdir is not None:
            self._requested_workdir.mkdir(parents=True, exist_ok=True)
            self._workdir = self._requested_workdir.resolve()
        else:
            self._workdir = Path(tempfile.mkdtemp(prefix="chiso-pg-", dir="/tmp"))
        try:
            self._launch()
        except BaseException:
            self._cleanup()
            raise
        return self

    def _launch(self) -> None:
        run_as = _run_as_postgres()
        if run_as:
            _assert_traversable(self.workdir)
            shutil.chown(self.workdir, "postgres", "postgres")
        if self._port is None:
            self._port = free_port()
        if not (self.data_dir / "PG_VERSION").exists():
            initdb = [
                *run_as,
                str(self.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
            if not self.durable:
                initdb.append("--no-sync")
            self._run(initdb, "initdb")

        socket_dir = str(self.workdir) if len(str(self.workdir)) <= _MAX_SOCKET_DIR_LEN else ""
        settings = {
            "listen_addresses": LOCALHOST,
            "port": str(self.port),
            # '' = TCP only; otherwise the socket lives in our folder, not /var/run/postgresql (root-owned)
            "unix_socket_directories": socket_dir,
            "max_connections": str(self.max_connections),
        }
        if not self.durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        # pg_ctl pastes -o into a /bin/sh command line, hence the shell quoting.
        opts = " ".join(f"-c {shlex.quote(f'{k}={v}')}" for k, v in settings.items())
        self._run(
            [
                *run_as,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                str(self.start_timeout),
                "-o",
                opts,
                "start",
            ],
            "pg_ctl start",
        )
        self._started = True
        self._create_database()

    def _run(self, cmd: list[str], what: str) -> str:
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"{what} failed (exit {result.returncode}): {shlex.join(cmd)}\n"
                f"{(result.stdout + result.stderr)[-3000:]}\n{log_tail(self.log_path, 3000)}"
            )
        return result.stdout

    def _psql(self, sql: str) -> str:
        return self._run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-h",
                LOCALHOST,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-tAc",
                sql,
            ],
            "psql",
        )

    def _create_database(self) -> None:
        # dbname matched _DBNAME_RE, so interpolating it is safe
        if self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.dbname}'").strip() != "1":
            self._psql(f'CREATE DATABASE "{self.dbname}"')

    def stop(self) -> None:
        """``pg_ctl stop -m fast`` and remove the temp folder unless data is kept. Safe to call twice."""
        self._cleanup()

    def _cleanup(self) -> None:
        if self._workdir is None:
            return
        if (self.data_dir / "postmaster.pid").exists():
            pid = self.pid
            if not pg_ctl_stop(self.data_dir, bindir=self.bindir) and process_alive(pid):
                stop_process_group(pid, timeout=10)
        self._started = False
        if not self.keep_data:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------------------
# state file of the long-running local stack (`chiso infra up/down/status/env`)


@dataclass(frozen=True)
class PostgresRecord:
    pid: int
    port: int
    url: str
    workdir: str
    data_dir: str
    log_path: str


@dataclass(frozen=True)
class KafkaRecord:
    pid: int
    port: int
    controller_port: int
    bootstrap_servers: str
    workdir: str
    log_path: str
    cluster_id: str


@dataclass(frozen=True)
class InfraState:
    started_at: float
    postgres: PostgresRecord | None = None
    kafka: KafkaRecord | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> InfraState:
        raw: dict[str, Any] = json.loads(text)
        pg = raw.get("postgres")
        kafka = raw.get("kafka")
        return cls(
            started_at=float(raw["started_at"]),
            postgres=PostgresRecord(**pg) if pg else None,
            kafka=KafkaRecord(**kafka) if kafka else None,
        )


def state_path(repo_root: Path) -> Path:
    return repo_root / ".cache" / "infra" / "state.json"


def write_state(path: Path, state: InfraState) -> None:
    """Write atomically (temp file + rename) so a crashed `up` never leaves half a JSON document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(state.to_json())
    tmp.replace(path)


def read_state(path: Path) -> InfraState | None:
    try:
        return InfraState.from_json(path.read_text())
    except FileNotFoundError:
        return None


def env_lines(state: InfraState) -> list[str]:
    """``export`` lines for ``eval "$(chiso infra env)"``."""
    lines = []
    if state.kafka is not None:
        lines.append(f"export KAFKA_BOOTSTRAP_SERVERS={shlex.quote(state.kafka.bootstrap_servers)}")
    if state.postgres is not None:
        lines.append(f"export DATABASE_URL={shlex.quote(state.postgres.url)}")
    return lines
