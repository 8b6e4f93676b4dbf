"""Wiring of the intake from settings: units registry, rules, calendars and the pseudonym key.

Shared by the service's composition root and the bulk import command, so both judge by the same rules.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from eventkit.postgres import PostgresEventStore
from eventkit.units import UnitRegistry
from eventkit.worktime import WorkingCalendar
from services.dossiers.domain import Judge
from services.dossiers.intake import Intake
from services.dossiers.privacy import Pseudonymizer
from services.dossiers.rulesets import DEFAULT_RULESETS, load_rules
from services.dossiers.settings import DossiersSettings

__all__ = ["build_intake", "judges"]


def judges(settings: DossiersSettings) -> Callable[[str], Judge]:
    """Province code -> the Judge (rules with the province's overrides, the province's calendar)."""
    rules = load_rules(DEFAULT_RULESETS, settings.rules_dir)

    @functools.lru_cache(maxsize=128)
    def judge_of(province_code: str) -> Judge:
        calendar = (
            WorkingCalendar.load(province_code, overrides_dir=settings.calendar_dir)
            if settings.calendar_dir is not None
            else WorkingCalendar.load()
        )
        return Judge(rules, calendar, calendar.hours.hours_per_day, province_code)

    return judge_of


def build_intake(settings: DossiersSettings, store: PostgresEventStore) -> Intake:
    """The intake the three ways in share."""
    return Intake(
        store=store,
        units=UnitRegistry.load(),
        judge_of=judges(settings),
        pseudonymizer=Pseudonymizer(settings.secret_bytes()),
        source=settings.source,
    )
