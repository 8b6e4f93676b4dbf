"""Configuration files of the plans service, read into the domain's rules: the indicator catalogue, the PAR
criteria trees, and adapters of the shared working calendar and unit registry (eventkit)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.plans import MeasureUnit
from eventkit.units import UnitRegistry
from eventkit.worktime import WorkingCalendar
from services.plans.domain import (
    CriteriaTree,
    Criterion,
    CriterionMethod,
    Indicator,
    IndicatorCatalog,
    Rules,
    UnitRef,
)

__all__ = [
    "CONFIG_DIR",
    "ConfigError",
    "RegistryUnits",
    "build_rules",
    "load_criteria_sets",
    "load_indicators",
    "read_criteria_tree",
]

_M = TypeVar("_M", bound=BaseModel)

#: the shipped configuration (``services/plans/config``)
CONFIG_DIR = Path(__file__).resolve().parent / "config"


class ConfigError(ValueError):
    """A configuration file is malformed; the message names the file, the field and the rule."""


class _Closed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _IndicatorEntry(_Closed):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_]*(\.[a-z0-9_]+)*$")]
    name: str = Field(min_length=1)
    unit: MeasureUnit
    source: str = Field(min_length=1)
    may_exceed_100: bool = False


class _IndicatorsFile(_Closed):
    indicators: list[_IndicatorEntry] = Field(min_length=1)


class _Node(_Closed):
    id: Annotated[str, Field(pattern=r"^\d+(\.\d+)*[a-z]?$")]
    name: str = Field(min_length=1)
    max: float = Field(gt=0)
    method: CriterionMethod = CriterionMethod.MANUAL
    evidence_required: bool | None = None
    criteria: list[_Node] = Field(default_factory=list)


class _TreeFile(_Closed):
    criteria_set_id: str = Field(min_length=1, max_length=80)
    province: Annotated[str, Field(pattern=r"^\d{2}$")]
    year: int = Field(ge=2000, le=2100)
    level: str = Field(min_length=1)
    source_decision: str = Field(min_length=1)
    areas: list[_Node] = Field(min_length=1)


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        msg = f"{path}: cannot read: {exc}"
        raise ConfigError(msg) from exc


def _validated(path: Path, model: type[_M], raw: Any) -> _M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        msg = f"{path}: {where}: {error['msg']} (value {error.get('input')!r})"
        raise ConfigError(msg) from exc


def load_indicators(path: Path | None = None) -> IndicatorCatalog:
    """The indicator catalogue (default: the shipped ``indicators.yaml``)."""
    path = path or CONFIG_DIR / "indicators.yaml"
    parsed = _validated(path, _IndicatorsFile, _read(path))
    indicators: dict[str, Indicator] = {}
    for entry in parsed.indicators:
        if entry.id in indicators:
            msg = f"{path}: indicator {entry.id!r} is listed twice"
            raise ConfigError(msg)
        indicators[entry.id] = Indicator(entry.id, entry.name, entry.unit, entry.source, entry.may_exceed_100)
    return IndicatorCatalog(indicators)


def read_criteria_tree(path: Path) -> CriteriaTree:
    """One criteria tree file; children's maxima must add up to their parent's."""
    parsed = _validated(path, _TreeFile, _read(path))
    criteria: dict[str, Criterion] = {}

    def add(node: _Node, parent: str | None) -> None:
        if parent is not None and not node.id.startswith(f"{parent}."):
            msg = f"{path}: criterion {node.id!r} is not numbered under {parent!r}"
            raise ConfigError(msg)
        if node.id in criteria:
            msg = f"{path}: criterion {node.id!r} is listed twice"
            raise ConfigError(msg)
        required = node.evidence_required
        if required is None:
            required = node.method in (CriterionMethod.MANUAL, CriterionMethod.HYBRID)
        criteria[node.id] = Criterion(node.id, node.name, node.max, node.method, required)
        total = sum(c.max for c in node.criteria)
        if node.criteria and abs(total - node.max) > 1e-9:
            msg = f"{path}: the maxima under {node.id!r} add up to {total:g}, not {node.max:g}"
            raise ConfigError(msg)
        for child in node.criteria:
            add(child, node.id)

    for area in parsed.areas:
        add(area, None)
    return CriteriaTree(
        criteria_set_id=parsed.criteria_set_id,
        province_code=parsed.province,
        year=parsed.year,
        level=parsed.level,
        source_decision=parsed.source_decision,
        criteria=criteria,
    )


def load_criteria_sets(directory: Path | None = None) -> dict[str, CriteriaTree]:
    """Every ``*.yaml`` tree of ``directory`` (default: the shipped ``config/criteria``), by criteria set id."""
    directory = directory or CONFIG_DIR / "criteria"
    try:
        return Rules.criteria_by_id(read_criteria_tree(p) for p in sorted(directory.glob("*.yaml")))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


class RegistryUnits:
    """The domain's unit directory over the shared :class:`eventkit.units.UnitRegistry`."""

    def __init__(self, registry: UnitRegistry) -> None:
        self._registry = registry

    def resolve(self, code: str, at: date, /) -> UnitRef | str:
        """See :class:`services.plans.domain.UnitDirectory`; keeps the code as written when it was mapped."""
        resolved = self._registry.resolve(code, at)
        if isinstance(resolved, str):
            return resolved
        legacy = resolved.legacy_code if resolved.legacy_code != resolved.unit_code else None
        return UnitRef(resolved.unit_code, resolved.province_code, legacy)


def build_rules(
    *,
    indicators: IndicatorCatalog | None = None,
    criteria_sets: Mapping[str, CriteriaTree] | None = None,
    calendar_overrides_dir: Path | None = None,
    province_code: str | None = None,
) -> Rules:
    """The production rules: shared calendar and unit registry, shipped (or given) configuration."""
    calendar = (
        WorkingCalendar.load(province_code, overrides_dir=calendar_overrides_dir)
        if province_code
        else WorkingCalendar.load()
    )
    return Rules(
        calendar=calendar,
        units=RegistryUnits(UnitRegistry.load()),
        indicators=indicators or load_indicators(),
        criteria_sets=criteria_sets if criteria_sets is not None else load_criteria_sets(),
    )
