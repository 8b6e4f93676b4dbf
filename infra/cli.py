"""``chiso infra``: a long-running local PostgreSQL + Kafka stack without Docker.

``up`` starts both in the background (they outlive the command) with their data kept in ``.cache/infra/``,
and records pids, ports and URLs in ``.cache/infra/state.json``; ``down``, ``status`` and ``env`` read that
file. Human-readable messages go to stderr and only ``export`` lines to stdout, so both
``eval "$(chiso infra up)"`` and ``eval "$(chiso infra env)"`` work.

Importing this module only builds the Typer command table; no process, file or console is touched.
"""

import shutil
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from infra import local

app = typer.Typer(
    help="Local PostgreSQL 15 + Apache Kafka (KRaft) on 127.0.0.1, without Docker.",
    no_args_is_help=True,
)

RootOption = Annotated[
    Path | None,
    typer.Option("--root", help="Project checkout (default: found from the current directory)."),
]


def _root(root: Path | None) -> Path:
    return root.resolve() if root is not None else local.find_repo_root()


def _err(message: str) -> None:
    # imported lazily: rich's console costs ~50 ms and is not needed to build the command table
    from rich.console import Console  # noqa: PLC0415

    Console(stderr=True).print(message)


def _fetch_with_spinner(root: Path, *, verbose: bool) -> Path:
    from rich.console import Console  # noqa: PLC0415

    libs = local.kafka_libs_dir(root)
    if local.has_kafka_libs(libs):
        return libs
    console = Console(stderr=True)
    if verbose:
        return local.ensure_kafka_libs(root, quiet=False)
    with console.status(f"Resolving the Kafka broker jars from Maven Central into {libs} ..."):
        return local.ensure_kafka_libs(root, quiet=True)


@app.command("fetch-kafka")
def fetch_kafka(
    root: RootOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Maven's output.")] = False,
) -> None:
    """Resolve the Kafka broker jars from Maven Central (once; a no-op when they are present)."""
    start = time.monotonic()
    try:
        libs = _fetch_with_spinner(_root(root), verbose=verbose)
    except RuntimeError as exc:
        _err(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    jars = list(libs.glob("*.jar"))
    size_mb = sum(j.stat().st_size for j in jars) / 1e6
    _err(f"{len(jars)} jars ({size_mb:.0f} MB) in {libs} [{time.monotonic() - start:.1f} s]")


def _check_port_free(port: int, what: str, flag: str) -> None:
    if port and local.port_open(port):
        _err(
            f"[red]error:[/red] port {port} is in use, so {what} cannot listen on it; pass {flag} 0 for any free port."
        )
        raise typer.Exit(1)


def _running_postgres(state: local.InfraState | None) -> local.PostgresRecord | None:
    if state is None or state.postgres is None:
        return None
    return state.postgres if local.process_alive(state.postgres.pid) else None


def _running_kafka(state: local.InfraState | None) -> local.KafkaRecord | None:
    if state is None or state.kafka is None:
        return None
    alive = local.process_alive(state.kafka.pid)
    return state.kafka if alive and "kafka.Kafka" in local.process_cmdline(state.kafka.pid) else None


@app.command()
def up(  # keyword-only: Typer passes options by name
    *,
    root: RootOption = None,
    kafka_port: Annotated[int, typer.Option(help="Broker port (0 = any free port).")] = 9092,
    controller_port: Annotated[int, typer.Option(help="KRaft controller port (0 = any free).")] = 0,
    pg_port: Annotated[int, typer.Option(help="PostgreSQL port (0 = any free port).")] = 5432,
    dbname: Annotated[str, typer.Option(help="Database to create.")] = "chiso",
    heap: Annotated[str, typer.Option(help="Broker JVM heap flags.")] = local.DEFAULT_HEAP,
) -> None:
    """Start PostgreSQL (durable) and Kafka in the background and print the env lines."""
    repo = _root(root)
    path = local.state_path(repo)
    state = local.read_state(path)
    pg_rec, kafka_rec = _running_postgres(state), _running_kafka(state)
    infra_dir = path.parent
    started_pg: local.LocalPostgres | None = None
    try:
        if pg_rec is None:
            _check_port_free(pg_port, "PostgreSQL", "--pg-port")
            started_pg = local.LocalPostgres(
                dbname=dbname, port=pg_port or None, workdir=infra_dir / "postgres", durable=True
            )
            t0 = time.monotonic()
            started_pg.start()
            pg_rec = local.PostgresRecord(
                pid=started_pg.pid,
                port=started_pg.port,
                url=started_pg.url,
                workdir=str(started_pg.workdir),
                data_dir=str(started_pg.data_dir),
                log_path=str(started_pg.log_path),
            )
            _err(f"PostgreSQL started (pid {pg_rec.pid}) in {time.monotonic() - t0:.1f} s")
        else:
            _err(f"PostgreSQL already running (pid {pg_rec.pid})")

        if kafka_rec is None:
            _check_port_free(kafka_port, "Kafka", "--kafka-port")
            libs = _fetch_with_spinner(repo, verbose=False)
            kafka = local.LocalKafka(
                libs,
                port=kafka_port or None,
                controller_port=controller_port or None,
                workdir=infra_dir / "kafka",
                heap=heap,
                jvm_flags=local.LONG_RUNNING_JVM_FLAGS,
            )
            t0 = time.monotonic()
            kafka.start()
            kafka_rec = local.KafkaRecord(
                pid=kafka.detach(),
                port=kafka.port,
                controller_port=kafka.controller_port,
                bootstrap_servers=kafka.bootstrap_servers,
                workdir=str(kafka.workdir),
                log_path=str(kafka.log_path),
                cluster_id=kafka.cluster_id or "",
            )
            _err(f"Kafka started (pid {kafka_rec.pid}) in {time.monotonic() - t0:.1f} s")
        else:
            _err(f"Kafka already running (pid {kafka_rec.pid})")
    except (RuntimeError, TimeoutError, FileNotFoundError, OSError) as exc:
        if started_pg is not None:  # leave nothing half-up behind
            started_pg.stop()
        _err(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc

    new_state = local.InfraState(started_at=time.time(), postgres=pg_rec, kafka=kafka_rec)
    local.write_state(path, new_state)
    _err(f"state: {path}   (stop with `chiso infra down`)")
    typer.echo("\n".join(local.env_lines(new_state)))


@app.command()
def down(
    root: RootOption = None,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the kept data in .cache/infra.")] = False,
) -> None:
    """Stop the processes recorded by `up` (data is kept unless --purge)."""
    repo = _root(root)
    path = local.state_path(repo)
    state = local.read_state(path)
    if state is None:
        _err("nothing recorded; the local stack is not up")
    else:
        if state.kafka is not None:
            stopped = local.stop_process_group(state.kafka.pid, timeout=30, expect="kafka.Kafka")
            _err(f"Kafka (pid {state.kafka.pid}): {'stopped' if stopped else 'was not running'}")
        if state.postgres is not None:
            data_dir = Path(state.postgres.data_dir)
            stopped = local.pg_ctl_stop(data_dir)
            if not stopped and local.process_alive(state.postgres.pid):
                stopped = local.stop_process_group(state.postgres.pid, timeout=10, expect="postgres")
            _err(f"PostgreSQL (pid {state.postgres.pid}): {'stopped' if stopped else 'was not running'}")
        path.unlink(missing_ok=True)
    if purge:
        for name in ("kafka", "postgres"):
            shutil.rmtree(path.parent / name, ignore_errors=True)
        _err(f"deleted data in {path.parent}")


@app.command()
def status(root: RootOption = None) -> None:
    """Show the recorded processes and whether they are alive. Exit code 1 unless both are up."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    state = local.read_state(local.state_path(_root(root)))
    if state is None:
        _err("the local stack is not up (no state file)")
        raise typer.Exit(1)
    table = Table("component", "pid", "process", "port", "address", "log")
    healthy = True
    rows: list[tuple[str, int, bool, int, str, str]] = []
    if state.postgres is not None:
        pg = state.postgres
        rows.append(("postgres", pg.pid, _running_postgres(state) is not None, pg.port, pg.url, pg.log_path))
    if state.kafka is not None:
        k = state.kafka
        rows.append(("kafka", k.pid, _running_kafka(state) is not None, k.port, k.bootstrap_servers, k.log_path))
    for name, pid, alive, port, address, log_path in rows:
        listening = local.port_open(port)
        healthy = healthy and alive and listening
        table.add_row(
            name,
            str(pid),
            "[green]alive[/green]" if alive else "[red]dead[/red]",
            f"{port} " + ("[green]open[/green]" if listening else "[red]closed[/red]"),
            address,
            log_path,
        )
    Console(file=sys.stdout).print(table)
    if not healthy or len(rows) < 2:
        raise typer.Exit(1)


@app.command()
def env(root: RootOption = None) -> None:
    """Print `export KAFKA_BOOTSTRAP_SERVERS=... DATABASE_URL=...` lines, for `eval "$(chiso infra env)"`."""
    state = local.read_state(local.state_path(_root(root)))
    if state is None:
        _err("the local stack is not up; run `chiso infra up`")
        raise typer.Exit(1)
    typer.echo("\n".join(local.env_lines(state)))
