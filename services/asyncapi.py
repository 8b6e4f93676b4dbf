"""The AsyncAPI document of every service, declared from the contracts (committed under contracts/asyncapi/)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from contracts import dossiers, plans, scoring, surveys
from contracts.topics import (
    DOSSIERS_EVENTS,
    DOSSIERS_INBOUND,
    PLANS_EVENTS,
    SCORING_INDICATORS,
    SURVEYS_EVENTS,
    SURVEYS_INBOUND,
)
from eventkit.asyncapi import Channel, build_asyncapi, render
from eventkit.service import chiso_version
from services.dossiers.app import INBOX
from services.scoring.projections import UnitActivityProjection
from services.surveys.inbox import INBOX as SURVEYS_INBOX

__all__ = ["DOCUMENTS", "check_asyncapi", "write_asyncapi"]

_DERIVED = (dossiers.DossierResolved, dossiers.DossierBecameOverdue, dossiers.ApologyAssessed)
_INBOUND_DOSSIER_FACTS = tuple(e for e in dossiers.EVENTS if e not in _DERIVED)


def _dossiers() -> dict[str, Any]:
    return build_asyncapi(
        service="dossiers",
        version=chiso_version(),
        description="One-stop-shop software publishes dossier facts; chiso stores them once and republishes "
        "them, with its derived facts, as canonical dossier events.",
        receives=[
            Channel(
                DOSSIERS_INBOUND,
                "dossiers-inbound",
                "Dossier facts from provincial one-stop-shop systems. Key = ce_subject = `dossier:<MaHoSo>` "
                "(or `feedback:<id>`). Refused facts go to vn.cchc.deadletters.dossiers.inbound with the reason.",
                _INBOUND_DOSSIER_FACTS,
                group_id=f"chiso.{INBOX}",
            )
        ],
        sends=[Channel(DOSSIERS_EVENTS, "dossiers-events", "Canonical dossier events", dossiers.EVENTS)],
    )


def _surveys() -> dict[str, Any]:
    return build_asyncapi(
        service="surveys",
        version=chiso_version(),
        description="Citizen survey responses (SIPAS and questionnaires) as events.",
        receives=[
            Channel(
                SURVEYS_INBOUND,
                "surveys-inbound",
                "Survey responses from partner survey systems, validated against the instrument version named in "
                "the payload; key = ce_subject = the response's stream id. At most one response per dossier. "
                "Refused responses go to vn.cchc.deadletters.surveys.inbound with the reason.",
                surveys.EVENTS,
                group_id=f"chiso.{SURVEYS_INBOX}",
            )
        ],
        sends=[Channel(SURVEYS_EVENTS, "surveys-events", "Canonical survey events", surveys.EVENTS)],
    )


def _plans() -> dict[str, Any]:
    return build_asyncapi(
        service="plans",
        version=chiso_version(),
        description="CCHC plans, targets, tasks, reports, inspections and PAR criterion assessments.",
        receives=[],
        sends=[Channel(PLANS_EVENTS, "plans-events", "Plans, tasks, reports and assessments", plans.EVENTS)],
    )


def _scoring() -> dict[str, Any]:
    return build_asyncapi(
        service="scoring",
        version=chiso_version(),
        description="Projects the canonical events of all services into per-commune indicators and publishes "
        "an `indicator updated` event whenever an indicator of a commune or province changes.",
        receives=[
            Channel(
                topic,
                f"scoring-{topic.split('.')[2]}",
                "Read by the scoring projections (one consumer group each)",
                payloads,
                group_id=f"chiso.{UnitActivityProjection.name}",
            )
            for topic, payloads in (
                (DOSSIERS_EVENTS, dossiers.EVENTS),
                (SURVEYS_EVENTS, surveys.EVENTS),
                (PLANS_EVENTS, plans.EVENTS),
            )
        ],
        sends=[
            Channel(
                SCORING_INDICATORS,
                "scoring-indicators",
                "`indicator updated` for district and commune systems: one event per changed (unit, period, "
                "indicator), coalesced every SCORING_PUBLISH_INTERVAL_MS, only when the value changed. Periods: "
                "`period_kind` month, quarter, year; `ytd` (period_start = 1 January, period_end = the day it "
                "was computed: one running value per year) and `reporting` (the data range of a report of the "
                "reporting scheme that applies to the province, `GET /report-schemes`; two reports starting on "
                "the same day, e.g. Quý I and the year, differ by period_end), both coalesced every "
                "SCORING_PUBLISH_RANGE_INTERVAL_MS. Values also move with no new event, each time once: when a "
                "PAKN in progress passes its F766 deadline (766 5.2 / 5.3), and when a period begins (month, "
                "quarter, year, year to date, report): the units with dossiers still open or PAKN in progress "
                "carried into it get the new period's values that are not N/A (carried over, open within time / "
                "overdue, 766 2.1, 5.2, the counts); its N/A values go out with the unit's first event in the "
                "period. Indicators: report 06, apology, the 766 indicators (incl. "
                "group 5 from PAKN and ratings, and the catalogue ones once a TTHC catalogue is loaded), SIPAS, "
                "PAPI-proxy, tasks/reports, PAR (year). Key = "
                "ce_subject = the unit code. Filter without parsing the value: `ce_provincecode` for a province "
                "or district system, `ce_unitcode` (exact code, or a prefix) for a commune; consume with "
                "isolation.level=read_committed. Example: examples/subscriber.py.",
                scoring.EVENTS,
            )
        ],
    )


DOCUMENTS: dict[str, Callable[[], dict[str, Any]]] = {
    "dossiers": _dossiers,
    "surveys": _surveys,
    "plans": _plans,
    "scoring": _scoring,
}


def write_asyncapi(directory: Path) -> list[Path]:
    """Write ``<service>.json`` for every service; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for service, build in DOCUMENTS.items():
        path = directory / f"{service}.json"
        path.write_text(render(build()), encoding="utf-8")
        written.append(path)
    return written


def check_asyncapi(directory: Path) -> list[str]:
    """Services whose committed document differs from the generated one (drift)."""
    problems = []
    for service, build in DOCUMENTS.items():
        path = directory / f"{service}.json"
        if not path.exists():
            problems.append(f"{path} is missing")
        elif path.read_text(encoding="utf-8") != render(build()):
            problems.append(f"{path} differs from the code")
    return problems
