"""Wiring of the intake from settings: units registry, rules, calendars and the pseudonym key.

Shared by the service's composition root and the bulk import command, so both judge by the same rules.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import time
from pathlib import Path

import yaml

from eventkit.postgres import PostgresEventStore
from eventkit.units import UnitRegistry
from eventkit.worktime import WorkingCalendar, WorkingHours
from services.dossiers.domain import Judge
from services.dossiers.intake import Intake
from services.dossiers.privacy import Pseudonymizer
from services.dossiers.rulesets import DEFAULT_RULESETS, load_rules
from services.dossiers.settings import DossiersSettings

__all__ = ["build_intake", "judges", "load_service_points"]


def judges(settings: DossiersSettings) -> Callable[[str, str | None], Judge]:
    """(province code, agency code) -> the Judge: the rules with the province's overrides, and the
    province's calendar with the opening hours of the service point (agency) that received the dossier."""
    rules = load_rules(DEFAULT_RULESETS, settings.rules_dir)
    hours_of = load_service_points(settings.service_points_file)

    @functools.lru_cache(maxsize=4096)
    def judge_of(province_code: str, agency_code: str | None = None) -> Judge:
        hours = hours_of.get(agency_code) if agency_code is not None else None
        calendar = (
            WorkingCalendar.load(province_code, overrides_dir=settings.calendar_dir, hours=hours)
            if settings.calendar_dir is not None
            else WorkingCalendar.load(hours=hours)
        )
        return Judge(rules, calendar, calendar.hours.hours_per_day, province_code)

    return judge_of


def load_service_points(path: Path | None) -> dict[str, WorkingHours]:
    """Opening hours per service point (agency code, MADONVI) from a YAML file; empty without a file.

    Format: ``service_points: {"000.04.01.H26": [["07:30", "11:30"], ["13:00", "17:00"]]}`` (quoted times).
    Service points not listed keep their province's (or the default) hours.
    """
    if path is None:
        return {}
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        points = document.get("service_points") or {}
        return {
            str(agency): WorkingHours(tuple((time.fromisoformat(a), time.fromisoformat(b)) for a, b in segments))
            for agency, segments in points.items()
        }
    except (OSError, yaml.YAMLError, AttributeError, TypeError, ValueError) as exc:
        msg = f"{path}: service points: {exc}"
        raise ValueError(msg) from None


def build_intake(settings: DossiersSettings, store: PostgresEventStore) -> Intake:
    """The intake the three ways in share."""
    return Intake(
        store=store,
        units=UnitRegistry.load(),
        judge_of=judges(settings),
        pseudonymizer=Pseudonymizer(settings.secret_bytes()),
        source=settings.source,
    )
