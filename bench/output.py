"""Where a benchmark's result goes: ``bench/results/[<name>-]<UTC time>.json`` (git-ignored; the figures
quoted in BENCHMARKS.md are committed with ``git add -f``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

RESULTS = Path(__file__).resolve().parent / "results"


def save_result(result: dict, name: str, console: Console | None = None, *, show: bool = False) -> Path:
    """Write ``result`` as ``<name>-<its "when", else now>.json``; print it too with ``show``."""
    console = console or Console()
    RESULTS.mkdir(exist_ok=True)
    stamp = str(result.get("when") or datetime.now(UTC).isoformat(timespec="seconds"))[:19].replace(":", "")
    path = RESULTS / (f"{name}-{stamp}.json" if name else f"{stamp}.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    if show:
        console.print_json(json.dumps(result))
    console.print(f"written to {path}")
    return path
