"""Composition root of the scoring service: settings -> runtime -> projections, query API."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI

from contracts.registry import default_registry
from eventkit.deadletter import DeadLetterPublisher
from eventkit.heap import settle_heap_for_batches
from eventkit.pg import apply_migrations
from eventkit.projection import Projection, ProjectionRunner
from eventkit.service import Component, Runtime, ServiceSettings, service_app, store_and_relay
from eventkit.units import MERGER_DATE, ResolvedUnit, UnitRegistry
from services.scoring.configs import load_aggregators, load_configs
from services.scoring.dirty import UnitDaysHook
from services.scoring.indicator_api import IndicatorQueries, indicator_router
from services.scoring.papi import MIGRATIONS as PAPI_MIGRATIONS
from services.scoring.papi import MIGRATIONS_NAME as PAPI_MIGRATIONS_NAME
from services.scoring.period_api import period_router
from services.scoring.projections import ChangeHook, DossierIndicatorsProjection, UnitActivityProjection
from services.scoring.projections_feedback import FeedbackProjection
from services.scoring.projections_plans import PlansIndicatorsProjection
from services.scoring.projections_surveys import SurveyIndicatorsProjection
from services.scoring.queries import query_router
from services.scoring.ranges import load_schemes
from services.scoring.settings import ScoringSettings
from services.scoring.subscriptions import MIGRATIONS as SUBSCRIPTION_MIGRATIONS
from services.scoring.subscriptions import IndicatorPublisher, dossier_change_hook, unit_days_hook
from services.scoring.table_lane import TableLane

__all__ = ["build_app", "legacy_district_of", "scoring_projections"]

_LAST_LEGACY_DAY = MERGER_DATE.fromordinal(MERGER_DATE.toordinal() - 1)


def legacy_district_of(code: str) -> str | None:
    """The pre-2025 district of a legacy unit code (a legacy code is read as of 30/06/2025, its last day)."""
    resolved = UnitRegistry.load().resolve(code, _LAST_LEGACY_DAY)
    if isinstance(resolved, ResolvedUnit):
        return resolved.legacy_district_code or (code if len(code) == 3 else None)
    return code if len(code) == 3 else None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def scoring_projections(
    on_change: ChangeHook | None = None,
    on_unit_days: UnitDaysHook | None = None,
    clock: Callable[[], datetime] | None = None,
) -> list[Projection]:
    """Every projection of the service: what it runs, and what ``chiso scoring rebuild`` replays. ``clock``:
    the day up to which a PAKN in progress marks its periods dirty (the dossiers' hook has its own)."""
    return [
        UnitActivityProjection(),
        DossierIndicatorsProjection(legacy_district_of, on_change),
        SurveyIndicatorsProjection(on_unit_days),
        PlansIndicatorsProjection(on_unit_days),
        FeedbackProjection(legacy_district_of, on_unit_days, clock=clock),  # 766 group 5: PAKN and ratings
    ]


def build_app(settings: ScoringSettings | None = None, shell: ServiceSettings | None = None) -> FastAPI:
    """The scoring service as an ASGI app (nothing connects or loads until the app starts)."""
    own = settings or ScoringSettings()
    projections = scoring_projections(dossier_change_hook(_utc_now), unit_days_hook(), clock=_utc_now)
    shell = shell or ServiceSettings(name="scoring", schema=own.db_schema)
    registry = default_registry()

    async def assemble(runtime: Runtime) -> tuple[Sequence[Component], Sequence[APIRouter]]:
        configs = load_configs(own.d766_config_dir)  # a broken configuration stops the start, not a request
        if own.d766_default not in configs:
            msg = f"SCORING_D766_DEFAULT {own.d766_default!r} is not one of {sorted(configs)}"
            raise ValueError(msg)
        await apply_migrations(runtime.pool, "scoring.subscriptions", SUBSCRIPTION_MIGRATIONS)  # the hook's table
        await apply_migrations(runtime.pool, PAPI_MIGRATIONS_NAME, PAPI_MIGRATIONS)  # filled by chiso papi import
        roles = own.role_set
        runners = []
        for projection in projections:
            await apply_migrations(runtime.pool, projection.name, projection.migrations)  # the API reads them too
            if "projections" not in roles:
                continue
            runners.append(
                ProjectionRunner(
                    projection=projection,
                    pool=runtime.pool,
                    kafka=shell.kafka,
                    registry=registry,
                    dead_letters=DeadLetterPublisher(runtime.producer, projection.name),
                    metrics=runtime.metrics,
                    max_records=own.max_batch,
                )
            )
        routers = [
            query_router(runtime.pool),
            indicator_router(queries := IndicatorQueries(runtime.pool, configs, own.d766_default, UnitRegistry.load)),
            period_router(runtime.pool, configs, own.d766_default),  # ytd, reporting periods, frozen
        ]
        components: list[Component] = [*runners]
        if "publisher" in roles:
            components.extend(_publisher_and_relay(runtime, own, queries))
        started.append(queries)
        settle_heap_for_batches()  # the long-lived state is loaded: keep it out of the collections the batches trigger
        return components, routers if "api" in roles else []

    started: list[IndicatorQueries] = []  # the queries of the running service, for the table lane
    app = service_app(
        shell,
        registry,
        assemble,
        title="chiso scoring",
        description="Live per-commune indicators projected from the dossiers, surveys and plans events.",
        dead_letter_consumers=tuple(p.name for p in projections),
    )
    # known province-table questions answered below the framework (see services.scoring.table_lane for why)
    app.add_middleware(TableLane, queries=lambda: started[-1] if started else None)
    return app


def _publisher_and_relay(runtime: Runtime, own: ScoringSettings, queries: IndicatorQueries) -> list[Component]:
    """The indicator publisher and the relay that publishes what it appends (role ``publisher``)."""
    store, relay = store_and_relay(runtime)
    publisher = IndicatorPublisher(
        pool=runtime.pool,
        store=store,
        ruleset_version=own.d766_default,
        interval_s=own.publish_interval_ms / 1000,
        aggregators=load_aggregators(),
        par=queries.province_par_values,
        schemes=load_schemes(),  # year-to-date and the provinces' reporting periods
        range_interval_s=own.publish_range_interval_ms / 1000,
        max_share=own.publish_max_share,
        max_keys=own.publish_max_keys,
    )
    return [publisher, relay]
