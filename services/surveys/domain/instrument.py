"""Questionnaires (bảng hỏi) as versioned data: elements, items, scales, profile bands, effective period.

An :class:`Instrument` is read from a YAML file (``services/surveys/instruments/`` ships the national ones,
provinces add theirs from a configured directory) and never from code: a method changes by decision
(QĐ 2640/QĐ-BNV 2017, QĐ 1001/QĐ-BNV 2023, a province's own plan), and a response must be judged by the
version it was given with. A version is immutable once published; a change is a new version.

Each item and the instrument itself carry the DOMAIN.md confidence tag of what they state ([V] verified,
[S] secondary, [I] inferred, [U] unconfirmed, [C] conflicting). An instrument whose item list is not
confirmed by the official text is ``status: unconfirmed``: it can collect answers, and everything computed
from it says so.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.surveys import RespondentType

__all__ = [
    "Confidence",
    "Element",
    "Instrument",
    "Item",
    "ItemKind",
    "ItemRole",
    "ProfileSpec",
    "ProxyFor",
    "Scale",
]

_Code = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]


class _Spec(BaseModel):
    # closed and frozen like the contracts: a typo in a province's file is an error at start-up, not an
    # item that silently accepts anything
    model_config = ConfigDict(frozen=True, extra="forbid")


class Confidence(StrEnum):
    """DOMAIN.md §0.1 confidence tag of a stated fact."""

    VERIFIED = "V"
    SECONDARY = "S"
    INFERRED = "I"
    UNCONFIRMED = "U"
    CONFLICTING = "C"


class ItemKind(StrEnum):
    """How an item is answered (the value's shape)."""

    #: one integer point of a scale (agree/disagree, the 5-level satisfaction scale)
    SCALE = "scale"
    #: one option code (a string)
    CHOICE = "choice"
    #: several option codes (a list of strings), e.g. the aspects a respondent wants improved
    MULTI_CHOICE = "multi_choice"


class ItemRole(StrEnum):
    """What the item measures; scoring aggregates by role (DOMAIN §7.3)."""

    JUDGEMENT = "judgement"  # nhận định
    SATISFACTION = "satisfaction"  # sự hài lòng
    EXPECTATION = "expectation"  # sự mong đợi
    EXPERIENCE = "experience"  # a fact the respondent reports (visits, payments asked, portal used)


class Scale(_Spec):
    """A closed scale: integer points with their labels, and which points count as positive."""

    # int, not StrictInt: JSON (a province file, the API) writes the points as object keys, i.e. strings
    points: dict[int, Annotated[str, Field(min_length=1)]] = Field(min_length=2)
    #: points counted as "positive" by the ratios (e.g. hài lòng + rất hài lòng, DOMAIN §7.3)
    positive: tuple[int, ...] = Field(min_length=1)
    confidence: Confidence = Confidence.UNCONFIRMED

    @model_validator(mode="after")
    def _positive_are_points(self) -> Self:
        unknown = sorted(set(self.positive) - set(self.points))
        if unknown:
            msg = f"positive points {unknown} are not points of the scale"
            raise ValueError(msg)
        return self


class ProxyFor(_Spec):
    """The PAPI dimension an item of a chiso questionnaire approximates (DOMAIN §8.1, §8.4).

    Results of such items are a labelled *proxy*: PAPI is a provincial index from a national sample and
    cannot be computed per commune.
    """

    index: Literal["PAPI"] = "PAPI"
    dimension: int = Field(ge=1, le=8)
    name: str = Field(min_length=1)
    sub_dimension: str | None = None


class Item(_Spec):
    """One question."""

    id: _Code
    kind: ItemKind
    role: ItemRole
    text: str = Field(min_length=1, description="The question as asked, in Vietnamese")
    en: str | None = Field(default=None, description="English gloss for documentation")
    #: name of a scale of the instrument (``kind: scale``)
    scale: str | None = None
    #: option code -> label (``kind: choice`` / ``multi_choice``)
    options: dict[_Code, Annotated[str, Field(min_length=1)]] | None = None
    min_choices: int = Field(default=1, ge=1)
    max_choices: int | None = Field(default=None, ge=1)
    required: bool = True
    #: only answerable in a policy survey (the response names its ``policy_group``)
    needs_policy_group: bool = False
    confidence: Confidence = Confidence.UNCONFIRMED
    proxy_for: ProxyFor | None = None

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if self.kind is ItemKind.SCALE and (self.scale is None or self.options is not None):
            msg = f"item {self.id}: a scale item names a scale and has no options"
            raise ValueError(msg)
        if self.kind is not ItemKind.SCALE and (not self.options or self.scale is not None):
            msg = f"item {self.id}: a {self.kind} item lists options and names no scale"
            raise ValueError(msg)
        if self.max_choices is not None and self.max_choices < self.min_choices:
            msg = f"item {self.id}: max_choices < min_choices"
            raise ValueError(msg)
        return self


class Element(_Spec):
    """A group of items (yếu tố), e.g. SIPAS's "Tiếp cận dịch vụ"."""

    id: _Code
    name: str = Field(min_length=1, description="Vietnamese name")
    en: str | None = None
    items: tuple[Item, ...] = Field(min_length=1)


class ProfileSpec(_Spec):
    """Which respondent bands the instrument records: bands only, never an identity (no personal data)."""

    types: tuple[RespondentType, ...] = Field(min_length=1)
    age_bands: tuple[Annotated[str, Field(pattern=r"^\d{1,3}(-\d{1,3}|\+)$")], ...] = Field(min_length=1)
    #: allowed ethnic-group bands; None: the instrument does not ask (an answer is refused)
    ethnicity: tuple[Annotated[str, Field(min_length=1)], ...] | None = None


class Instrument(_Spec):
    """A questionnaire version: what may be answered, how, and when it is in force."""

    id: _Code
    version: Annotated[str, Field(min_length=1, max_length=100)]
    title: str = Field(min_length=1)
    #: the decision or design the version implements, e.g. "QĐ 1001/QĐ-BNV (11/12/2023)"
    method: str = Field(min_length=1)
    #: what its results may be called: "SIPAS" for the national methods; a proxy label otherwise
    results_label: str = Field(min_length=1)
    status: Literal["confirmed", "unconfirmed"]
    confidence: Confidence
    notes: str = ""
    sources: tuple[str, ...] = ()
    #: first and last day (inclusive, Việt Nam date of submission) the version may be used
    effective_from: date
    effective_to: date | None = None
    #: provinces allowed to use it (a province's own instrument); empty: every province
    provinces: tuple[Annotated[str, Field(pattern=r"^\d{2}$")], ...] = ()
    respondent: ProfileSpec
    #: whether a response carries a design/post-stratification weight (DOMAIN §7.3 [U])
    weight: Literal["none", "optional", "required"] = "none"
    #: allowed policy groups (policy surveys); empty: ``policy_group`` must be absent
    policy_groups: tuple[Annotated[str, Field(min_length=1)], ...] = ()
    scales: dict[_Code, Scale] = Field(default_factory=dict)
    elements: tuple[Element, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.effective_to is not None and self.effective_to < self.effective_from:
            msg = f"{self.key}: effective_to is before effective_from"
            raise ValueError(msg)
        seen: set[str] = set()
        for element in self.elements:
            for item in element.items:
                if item.id in seen:
                    msg = f"{self.key}: item id {item.id!r} appears twice"
                    raise ValueError(msg)
                seen.add(item.id)
                if item.scale is not None and item.scale not in self.scales:
                    msg = f"{self.key}: item {item.id!r} names the unknown scale {item.scale!r}"
                    raise ValueError(msg)
        return self

    @property
    def key(self) -> str:
        """``id@version``, how logs and reasons name the instrument."""
        return f"{self.id}@{self.version}"

    def items(self) -> tuple[Item, ...]:
        """Every item, in questionnaire order."""
        return self._items

    def item(self, item_id: str) -> Item | None:
        """The item with this id, if the instrument has one."""
        return self._by_id.get(item_id)

    # computed once per (immutable) instrument: the validator asks for them for every answer it checks
    @cached_property
    def _items(self) -> tuple[Item, ...]:
        return tuple(item for element in self.elements for item in element.items)

    @cached_property
    def _by_id(self) -> dict[str, Item]:
        return {item.id: item for item in self._items}

    def accepted_as_is(self) -> tuple[tuple[Item, frozenset[int | str]], ...]:
        """Per item in order, the answers that are valid exactly as sent: its scale points (``int``) or option
        codes (``str``) of a single choice; empty for a multi-choice (its options are put in order).

        The validator's fast path on every submission: one set membership per answer, the full check (with
        the reason) only for what is not in the set.
        """
        return self._accepted_as_is

    @cached_property
    def _accepted_as_is(self) -> tuple[tuple[Item, frozenset[int | str]], ...]:
        out: list[tuple[Item, frozenset[int | str]]] = []
        for item in self._items:
            if item.kind is ItemKind.SCALE and item.scale is not None:
                out.append((item, frozenset(self.scales[item.scale].points)))
            elif item.kind is ItemKind.CHOICE:
                out.append((item, frozenset(item.options or {})))
            else:
                out.append((item, frozenset()))
        return tuple(out)

    @cached_property
    def needs_policy_group(self) -> frozenset[str]:
        """Ids of the items only a policy survey may answer."""
        return frozenset(item.id for item in self._items if item.needs_policy_group)

    def in_force(self, day: date) -> bool:
        """Whether a response submitted on ``day`` (Việt Nam date) may use this version."""
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)
