"""Import of a whole plan from a structured file (YAML or JSON): ``chiso plans import FILE``.

The file mirrors a plan document: the plan, its targets, inspections and findings, tasks (with what they
remedy), reports, and later facts (completions, cancellations, submissions, assessments). Each entry
becomes a domain command and goes through the same handler as the HTTP API, in that order; the ids in the
file make it idempotent (a second import stores nothing: every command decides "already recorded"). A bad
entry is refused with its reason and the import goes on.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from services.plans.domain import (
    AppraiseCriterion,
    AssignTask,
    CancelTask,
    Command,
    CompleteTask,
    IssuePlan,
    LinkRemediation,
    PlanInspection,
    RecordFinding,
    ScheduleReport,
    SelfAssessCriterion,
    SetTarget,
    SubmitReport,
    ZeroCriterion,
)
from services.plans.handler import OutcomeStatus, PlansHandler

__all__ = ["SECTIONS", "Entry", "ImportSummary", "PlanFileError", "entries", "import_plan", "read_plan_file"]


class PlanFileError(ValueError):
    """The file cannot be read as a plan file at all (nothing is imported)."""


#: sections in the order they are imported, the command each entry becomes, and the field the plan fills in
SECTIONS: tuple[tuple[str, type[BaseModel], str | None], ...] = (
    ("targets", SetTarget, "plan_id"),
    ("inspections", PlanInspection, "plan_id"),
    ("findings", RecordFinding, None),
    ("tasks", AssignTask, "plan_id"),
    ("reports", ScheduleReport, "plan_id"),
    ("task_completions", CompleteTask, None),
    ("task_cancellations", CancelTask, None),
    ("report_submissions", SubmitReport, None),
    ("self_assessments", SelfAssessCriterion, "unit_code"),
    ("appraisals", AppraiseCriterion, "unit_code"),
    ("zeroings", ZeroCriterion, "unit_code"),
)
_KNOWN = {"plan", *(name for name, _, _ in SECTIONS)}


@dataclass(frozen=True)
class Entry:
    """One entry of the file: where it is, and its command or why it is not one."""

    label: str
    command: Command | None = None
    error: str | None = None


@dataclass
class ImportSummary:
    """What an import did."""

    recorded: int = 0
    unchanged: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        """Entries processed."""
        return self.recorded + self.unchanged + len(self.refused)


def read_plan_file(path: Path) -> dict[str, Any]:
    """The file's content (``.json`` as JSON, anything else as YAML)."""
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        msg = f"{path}: cannot read the plan file: {exc}"
        raise PlanFileError(msg) from exc
    if not isinstance(document, dict):
        msg = f"{path}: a plan file is a mapping with a 'plan' section"
        raise PlanFileError(msg)
    return document


def _why(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "entry"
        parts.append(f"{where}: {error['msg']} (value {error.get('input')!r})")
    return "; ".join(parts)


def _label(section: str, index: int, raw: Mapping[str, Any]) -> str:
    ids = [
        str(raw[k])
        for k in ("target_id", "task_id", "report_id", "inspection_id", "finding_id", "criterion_id")
        if k in raw
    ]
    return f"{section}[{index}]" + (f" {ids[0]}" if ids else "")


def _command(model: type[BaseModel], raw: Mapping[str, Any]) -> Command | str:
    try:
        return model.model_validate(raw)  # type: ignore[return-value]  # every SECTIONS model is a Command
    except ValidationError as exc:
        return _why(exc)


def entries(document: Mapping[str, Any]) -> Iterator[Entry]:
    """The commands of a plan file, in import order (entries that are not valid commands carry the reason)."""
    unknown = sorted(set(document) - _KNOWN)
    if unknown:
        msg = f"unknown sections {unknown}; a plan file has: {', '.join(['plan', *(s for s, _, _ in SECTIONS)])}"
        raise PlanFileError(msg)
    raw_plan = document.get("plan")
    if not isinstance(raw_plan, dict):
        msg = "the 'plan' section is missing or is not a mapping"
        raise PlanFileError(msg)
    plan = _command(IssuePlan, raw_plan)
    yield Entry("plan", plan) if not isinstance(plan, str) else Entry("plan", error=plan)
    fill = {"plan_id": raw_plan.get("plan_id"), "unit_code": raw_plan.get("unit_code")}
    for section, model, filled in SECTIONS:
        items = document.get(section) or []
        if not isinstance(items, list):
            yield Entry(section, error=f"'{section}' must be a list")
            continue
        for index, raw in enumerate(items):
            if not isinstance(raw, dict):
                yield Entry(f"{section}[{index}]", error="an entry is a mapping")
                continue
            label = _label(section, index, raw)
            item = dict(raw)
            remediates = item.pop("remediates", []) if section == "tasks" else []
            if filled is not None:
                item.setdefault(filled, fill[filled])
            command = _command(model, item)
            yield Entry(label, command) if not isinstance(command, str) else Entry(label, error=command)
            if not isinstance(remediates, list):
                yield Entry(f"{label}.remediates", error="'remediates' must be a list")
                continue
            for link_index, link in enumerate(remediates):
                link_label = f"{label}.remediates[{link_index}]"
                if not isinstance(link, dict):
                    yield Entry(link_label, error="an entry is a mapping")
                    continue
                linked = _command(LinkRemediation, {**link, "task_id": item.get("task_id")})
                yield Entry(link_label, linked) if not isinstance(linked, str) else Entry(link_label, error=linked)


async def import_plan(
    handler: PlansHandler,
    document: Mapping[str, Any],
    *,
    progress: Callable[[Entry], None] | None = None,
) -> ImportSummary:
    """Import every entry of ``document`` through ``handler``; never stops at a refused entry."""
    summary = ImportSummary()
    for entry in list(entries(document)):
        if entry.command is None:
            summary.refused.append((entry.label, entry.error or "invalid entry"))
        else:
            outcome = await handler.handle(entry.command, correlation_id=f"import:{entry.label}")
            if outcome.status is OutcomeStatus.RECORDED:
                summary.recorded += 1
                summary.events.update(e.type for e in outcome.events)
            elif outcome.status is OutcomeStatus.UNCHANGED:
                summary.unchanged += 1
            else:
                refusal = outcome.refusal
                assert refusal is not None
                where = f" ({refusal.field}={refusal.value!r})" if refusal.field else ""
                summary.refused.append((entry.label, f"{refusal.reason}{where}"))
        if progress is not None:
            progress(entry)
    return summary
