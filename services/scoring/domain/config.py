"""The versioned Decision 766 configuration: indicator set, points, targets, bands (DOMAIN §5).

Point allocations are version-dependent (DOMAIN §0.3 caveat 2): the DVCQG metric table captured in 2026
(M766) and the older allocation of the TD implementation (2024-25) differ inside groups 1, 3 and 4. Both
ship as YAML (``services/scoring/config/``); this module only validates the parsed mapping, reading the
file is the caller's business. Every number carries the DOMAIN source it was taken from, and a value DOMAIN
does not give stays null: ``points: null`` means "allocation unknown" and makes the group unscorable, it is
never replaced by a guess.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["NON_RATIO_COMPUTATIONS", "Band", "D766Config", "D766Group", "D766Indicator", "parse_config"]

#: computations that are not ratios of counters, and why the value is N/A (see indicators.NaReason)
NON_RATIO_COMPUTATIONS = {
    "catalogue": "missing_reference_data",  # needs the national TTHC catalogue (CSDL QG về TTHC), DOMAIN §5.5
    "not_computable": "not_applicable",  # a service-availability flag, not an event (DOMAIN §5.5)
    "per_procedure": "not_applicable",  # 766 2.2 is shown for a single procedure only (DOMAIN §3.5)
    # PAKN and ratings (services.scoring.domain.feedback) where the read side supplies the value; an indicator
    # no event carries (M766's "cắt giảm, phân cấp" satisfaction) stays not computed
    "feedback": "not_computed",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class D766Indicator(_Frozen):
    """One indicator of the index and how many points it is worth in this version."""

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_]*(\.[a-z0-9_]+)*$", description="Stable indicator key")
    code: str = Field(description="Number of the indicator in DOMAIN §5.3, e.g. '2.1'")
    name: str = Field(description="Vietnamese name")
    computation: str = Field(description="A ratio of indicators.SPECS, or one of NON_RATIO_COMPUTATIONS")
    points: float | None = Field(ge=0, description="Maximum points; 0 = monitoring only; null = unknown")
    target: float | None = Field(default=None, gt=0, le=1, description="Target ratio T of the §5.2 rule")
    source: str = Field(min_length=1, description="Where the points and target come from (DOMAIN tags)")
    note: str = Field(default="", description="Deviations and approximations, stated")


class D766Group(_Frozen):
    """A group of indicators with its maximum points."""

    key: str = Field(pattern=r"^[a-z0-9_]+$")
    dvcqg_key: str = Field(description="Group key on the DVCQG dashboards (CKMB, TDGQ, CLGQ, TTTT, MDSH, MDHL)")
    name: str
    max_points: float = Field(gt=0)
    source: str = Field(min_length=1)
    indicators: tuple[D766Indicator, ...]


class Band(_Frozen):
    """A rating band: total points at or above ``min_points`` (and below the next band)."""

    name: str
    min_points: float = Field(ge=0)


class D766Config(_Frozen):
    """One version of the index configuration."""

    version: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="Stamped on every computed value")
    name: str
    source: str
    max_points: float = Field(gt=0)
    groups: tuple[D766Group, ...]
    bands_source: str
    bands: tuple[Band, ...]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        keys = [i.key for g in self.groups for i in g.indicators]
        if len(keys) != len(set(keys)):
            msg = "indicator keys must be unique"
            raise ValueError(msg)
        if abs(sum(g.max_points for g in self.groups) - self.max_points) > 1e-9:
            msg = f"group maxima sum to {sum(g.max_points for g in self.groups)}, not {self.max_points}"
            raise ValueError(msg)
        for group in self.groups:
            allocated = sum(i.points or 0 for i in group.indicators)
            if allocated > group.max_points + 1e-9:
                msg = f"group {group.key}: indicators allocate {allocated} > {group.max_points}"
                raise ValueError(msg)
        mins = [b.min_points for b in self.bands]
        if mins != sorted(mins, reverse=True):
            msg = "bands must be listed from the highest threshold down"
            raise ValueError(msg)
        return self

    def indicator(self, key: str) -> D766Indicator | None:
        """The indicator with this key, if this version has it."""
        return next((i for g in self.groups for i in g.indicators if i.key == key), None)


def parse_config(data: Any, known_ratios: frozenset[str]) -> D766Config:
    """Validate a parsed YAML mapping; every computation must be known to the indicator code."""
    config = D766Config.model_validate(data)
    for group in config.groups:
        for indicator in group.indicators:
            if indicator.computation not in known_ratios and indicator.computation not in NON_RATIO_COMPUTATIONS:
                msg = f"{indicator.key}: unknown computation {indicator.computation!r}"
                raise ValueError(msg)
    return config
