"""Wiring shared by the service's composition root and the bulk import: instruments, units, the intake."""

from __future__ import annotations

from contracts.registry import Registry
from eventkit.postgres import PostgresEventStore
from eventkit.units import UnitRegistry
from services.surveys.catalog import InstrumentCatalog, load_catalog
from services.surveys.intake import Intake
from services.surveys.settings import SurveysSettings

__all__ = ["build_intake"]


def build_intake(
    settings: SurveysSettings, store: PostgresEventStore, registry: Registry, catalog: InstrumentCatalog | None = None
) -> Intake:
    """The intake every way in shares, judging by the shipped instruments plus the province's directory."""
    return Intake(
        store=store,
        registry=registry,
        units=UnitRegistry.load(),
        catalog=catalog or load_catalog(settings.instruments_dir),
        source=settings.source,
    )
