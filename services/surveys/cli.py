"""``chiso surveys``: bulk import of paper results and survey links for a dossier.

Registered in :mod:`services.cli`. Only ``typer`` and the standard library are imported at module level,
so ``chiso --help`` stays fast.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(help="The surveys service: import paper results, sign QR/SMS survey links.", no_args_is_help=True)


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Survey records: .jsonl or .csv")],
    source: Annotated[
        str, typer.Option("--source", help="Who the records are attributed to (keep it stable across files)")
    ] = "urn:chiso:surveys:paper",
    batch: Annotated[int, typer.Option("--batch", min=1, max=20_000, help="Records per transaction")] = 500,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Where rejected records go (default: FILE.rejects.jsonl)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Import paper questionnaires through the surveys domain (idempotent; prints accepted/rejected with reasons).

    Needs DATABASE_URL (the surveys service's database); SURVEYS_INSTRUMENTS_DIR if the records use a
    province's own instruments. The running service's relay publishes the imported responses. Exit code 1
    when any record was rejected.
    """
    import asyncio  # noqa: PLC0415 - keep `chiso --help` fast

    from rich.console import Console  # noqa: PLC0415
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from eventkit.settings import DatabaseSettings  # noqa: PLC0415
    from services.surveys.importer import run_import  # noqa: PLC0415
    from services.surveys.settings import SurveysSettings  # noqa: PLC0415

    console = Console(stderr=True)
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=as_json) as progress:
        task = progress.add_task("import", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        summary = asyncio.run(
            run_import(
                file,
                settings=SurveysSettings(),
                database_url=DatabaseSettings().url,
                source=source,
                batch_size=batch,
                rejects_path=rejects,
                on_progress=on_progress,
            )
        )
    if as_json:
        document = {
            "file": summary.path,
            "records": summary.total,
            "accepted": summary.accepted,
            "duplicates": summary.duplicates,
            "rejected": summary.rejected,
            "seconds": round(summary.seconds, 3),
            "records_per_second": round(summary.records_per_second, 1),
            "rejections_by_rule": dict(summary.reasons.most_common()),
            "rejects_file": summary.rejects_path,
        }
        typer.echo(json.dumps(document, ensure_ascii=False))
    else:
        table = Table(title=f"import of {summary.path}")
        for column in ("records", "accepted", "already stored", "rejected", "records/s"):
            table.add_column(column)
        table.add_row(
            str(summary.total),
            str(summary.accepted),
            str(summary.duplicates),
            str(summary.rejected),
            f"{summary.records_per_second:,.0f}",
        )
        out = Console()
        out.print(table)
        if summary.reasons:
            reasons = Table(title="rejected, by rule")
            reasons.add_column("records")
            reasons.add_column("rule")
            for rule, count in summary.reasons.most_common(15):
                reasons.add_row(str(count), rule)
            out.print(reasons)
            for number, reason in summary.examples[:10]:
                out.print(f"  record {number}: {reason}")
            out.print(f"rejected records (with the original) are in {summary.rejects_path}")
    if summary.rejected:
        raise typer.Exit(1)


@app.command("link")
def link(
    dossier: Annotated[str, typer.Option("--dossier", help="The dossier code (MaHoSo) the response is about")],
    unit: Annotated[str, typer.Option("--unit", help="The commune code (mã ĐVHC) of the dossier")],
    channel: Annotated[str, typer.Option("--channel", help="qr (printed on Mẫu 01) or sms")] = "qr",
    days: Annotated[float | None, typer.Option("--days", min=0.01, max=90, help="Validity (default: config)")] = None,
    instrument: Annotated[str | None, typer.Option("--instrument", help="Instrument id (default: config)")] = None,
) -> None:
    """Print the survey link of a dossier (needs SURVEYS_TOKEN_SECRET, the key the service verifies with)."""
    from services.surveys.settings import SurveysSettings  # noqa: PLC0415
    from services.surveys.tokens import LinkClaims, LinkSigner  # noqa: PLC0415

    settings = SurveysSettings()
    if settings.token_secret is None:
        typer.echo("SURVEYS_TOKEN_SECRET is not set: a link signed now would not open on the service", err=True)
        raise typer.Exit(2)
    if channel not in {"qr", "sms"}:
        raise typer.BadParameter("qr or sms", param_hint="--channel")
    expires = datetime.now(UTC) + timedelta(days=days or settings.token_ttl_days)
    token = LinkSigner(settings.secret_bytes()).issue(LinkClaims(dossier, unit, channel, expires, instrument))
    typer.echo(f"{settings.public_base_url.rstrip('/')}/s/{token}")
