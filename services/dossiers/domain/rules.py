"""The rules a dossier is judged by, versioned by the date they took effect (DOMAIN §0.3 caveat 1).

A dossier is judged by the ruleset in force on the day it was received (Decree 61/2018 until 2025-06-30,
Decree 118/2025 from 2025-07-01). Every value here is configuration read from
``services/dossiers/config/rulesets.yaml`` (and a province's override file): DOMAIN tags most of these
rules [U] or [C], so none of them is hard-coded truth. This module only holds the shapes and the lookup.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum

__all__ = ["PROVINCIAL_CHOICES", "RulesBook", "Ruleset", "SupplementPolicy"]


class SupplementPolicy(StrEnum):
    """What a supplement completed during processing does to the due date (DOMAIN §2.4, [C]).

    PAUSE_RESUME: the time already spent is kept; the due date moves by the working time the dossier waited
    for the applicant. RESTART: the statutory time starts again when the supplement is complete (TD's
    ``SuDungYeuCauBoSungTheoNghiDinh = true``).
    """

    PAUSE_RESUME = "PAUSE_RESUME"
    RESTART = "RESTART"


#: the fields DOMAIN marks as a provincial choice: a province's override file may set only these
PROVINCIAL_CHOICES = frozenset({"supplement_policy", "apology_min_working_days_before_due", "apology_max_reschedules"})


@dataclass(frozen=True)
class Ruleset:
    """One version of the one-stop-shop rules (Decree 61/2018, Decree 118/2025, ...)."""

    #: stable id, stamped (with ``version``) into every verdict made under it, e.g. ``nd61-2018``
    id: str
    #: revision of this ruleset's configuration; bump when a value changes so verdicts stay traceable
    version: str
    #: legal basis, for people
    basis: str
    effective_from: date
    #: last day in force (inclusive); None while in force
    effective_until: date | None
    supplement_policy: SupplementPolicy
    #: an apology (Mẫu 04) is due at least this many working days before the original due date [U 61/2018]
    apology_min_working_days_before_due: float
    #: how many times the due date may be rescheduled by apology [U 61/2018: "không quá một lần"]
    apology_max_reschedules: int
    #: Decision 766 indicator 2.1: more supplement requests during processing than this = late [V F766 2.1]
    max_processing_supplements_766: int
    #: names of the paper forms (Mẫu 01..07) under this ruleset, for people and documents
    forms: Mapping[str, str] = field(default_factory=dict)
    #: tags and sources of each value (DOMAIN confidence tags), carried for audits
    sources: Mapping[str, str] = field(default_factory=dict)
    #: the province whose override produced this ruleset, if any
    province_code: str | None = None

    @property
    def stamp(self) -> str:
        """What verdicts record as the ruleset that made them."""
        suffix = f"/{self.province_code}" if self.province_code else ""
        return f"{self.id}@{self.version}{suffix}"

    def in_force(self, day: date) -> bool:
        """Whether a dossier received on ``day`` is judged by this ruleset."""
        return self.effective_from <= day and (self.effective_until is None or day <= self.effective_until)


@dataclass(frozen=True)
class RulesBook:
    """All rulesets of a deployment (national, with per-province overrides applied on lookup)."""

    rulesets: Sequence[Ruleset]
    #: province code -> {ruleset id -> {field -> value}} (only :data:`PROVINCIAL_CHOICES` fields)
    overrides: Mapping[str, Mapping[str, Mapping[str, object]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ordered = sorted(self.rulesets, key=lambda r: r.effective_from)
        for before, after in itertools.pairwise(ordered):
            if before.effective_until is None or before.effective_until >= after.effective_from:
                msg = f"rulesets {before.id} and {after.id} overlap"
                raise ValueError(msg)
        object.__setattr__(self, "rulesets", tuple(ordered))
        object.__setattr__(self, "_cache", {})

    def for_receipt(self, day: date, province_code: str | None = None) -> Ruleset | None:
        """The ruleset a dossier received on ``day`` in ``province_code`` is judged by (None: no rules then)."""
        cache: dict[tuple[date, str | None], Ruleset | None] = self._cache  # type: ignore[attr-defined]
        key = (day, province_code)
        if key in cache:
            return cache[key]
        found = next((r for r in self.rulesets if r.in_force(day)), None)
        if found is not None and province_code is not None:
            changes = self.overrides.get(province_code, {}).get(found.id)
            if changes:
                found = replace(found, province_code=province_code, **changes)  # type: ignore[arg-type]
        if len(cache) > 100_000:
            cache.clear()
        cache[key] = found
        return found

    def by_stamp(self, stamp: str) -> Ruleset | None:
        """The ruleset a verdict names (to re-judge a dossier by the rules it was received under)."""
        ruleset_id, _, rest = stamp.partition("@")
        _, _, province = rest.partition("/")
        base = next((r for r in self.rulesets if r.id == ruleset_id), None)
        if base is None:
            return None
        return self.for_receipt(base.effective_from, province or None)
