"""SIPAS and the PAPI-proxy per commune from survey responses (DOMAIN §7.3, §8.4): pure counting and formulas.

A response is counted once into per (unit, period, instrument id, instrument version) counters that keep the
raw answer distribution, not a verdict: ``responses``, ``item:<id>`` (responses answering the item) and
``item:<id>=<value>`` (responses giving that value; a multi-choice answer counts each chosen option). The
formulas are then an *aggregator configuration* per instrument version (``services/scoring/config/surveys``),
applied on read, so a corrected aggregator applies to the whole history without a rebuild, and the scoring
service never imports the surveys service (it keeps its own copy of what it aggregates).

Formulas (values are fractions 0..1, a percentage is x100):

- satisfaction of an element ``S_e`` = positive answers to its satisfaction item / answers to it (§7.3 [U]);
- judgement ``J_e`` = positive answers to its judgement items / judgement answers (pooled over the items);
- expectation share of an option = respondents choosing it / respondents (§7.3 [I]);
- shares (experience items, the PAPI-proxy items) = positive answers / answers, minus excluded options
  ("don't know", "prefer not to say", "not received yet");
- the index of an instrument version: the rule its aggregator names (``mean_of_elements``: the unweighted
  mean of the listed elements' ``S_e``; N/A unless every listed element has answers), or N/A when the
  method's rule is not known;
- a PAPI-proxy dimension: the mean of its items' shares, labelled proxy; never put on PAPI's 1-10 scale.

n and the 95% interval: ``n`` is the denominator. A proportion gets the **Wilson score interval** (z = 1.96),
which stays inside 0..1 and behaves at small n and at 0% / 100%. A mean of k proportions gets a **normal
interval with a conservative standard error**, the mean of the k standard errors ``sqrt(p(1-p)/n)``: by
Cauchy-Schwarz the standard deviation of a mean is at most the mean of the standard deviations whatever the
correlation between elements (they share respondents, and the covariance is not stored). A pooled judgement
interval treats judgements as independent (stated in its detail). n = 0 -> N/A, never 0.
Weights: the shipped instruments make weights optional or absent and the method's weighting is not
retrieved (DOMAIN §7.3 [U]); responses are counted unweighted, and the number carrying a weight is reported.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "RESPONSES",
    "WEIGHTED",
    "Aggregator",
    "SurveyValue",
    "aggregate",
    "count_answers",
    "mean_interval",
    "wilson",
]

Z95 = 1.959963984540054
DECIMALS = 4
RESPONSES = "responses"
WEIGHTED = "responses.weighted"

AnswerValue = int | str | tuple[str, ...]


def _codes(values: Sequence[int | str]) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ItemRule(_Frozen):
    """One item and the answer codes that count as positive (and those left out of the denominator)."""

    item: str = Field(min_length=1)
    positive: tuple[str, ...] = Field(min_length=1)
    exclude: tuple[str, ...] = ()

    @field_validator("positive", "exclude", mode="before")
    @classmethod
    def _as_codes(cls, v: Sequence[int | str]) -> tuple[str, ...]:
        return _codes(v)


class Judgements(_Frozen):
    """The judgement items of an element (agree / disagree) and the positive codes."""

    items: tuple[str, ...] = Field(min_length=1)
    positive: tuple[str, ...] = Field(min_length=1)

    @field_validator("positive", mode="before")
    @classmethod
    def _as_codes(cls, v: Sequence[int | str]) -> tuple[str, ...]:
        return _codes(v)


class Element(_Frozen):
    """A SIPAS element: a satisfaction item and judgement items."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    satisfaction: ItemRule | None = None
    judgements: Judgements | None = None


class Share(ItemRule):
    """A named share of one item's answers (experience items, PAPI-proxy items)."""

    key: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
    name: str


class Expectations(_Frozen):
    """The multi-choice expectation item and its options."""

    item: str
    options: tuple[str, ...] = Field(min_length=1)


class IndexRule(_Frozen):
    """How the instrument version's index is formed (``none``: the method's rule is not known -> N/A)."""

    rule: Literal["mean_of_elements", "none"]
    elements: tuple[str, ...] = ()
    label: str
    source: str
    na_detail: str = ""


class Dimension(_Frozen):
    """A PAPI-proxy dimension: the mean of the listed shares."""

    dimension: int = Field(ge=1, le=8)
    name: str
    shares: tuple[str, ...] = Field(min_length=1)


class Aggregator(_Frozen):
    """The aggregator configuration of one instrument version."""

    instrument_id: str
    version: str
    kind: Literal["sipas", "papi_proxy"]
    key_prefix: Literal["sipas", "papi_proxy"]
    label: str = Field(description="Shown with every value; a PAPI-proxy label must say proxy")
    source: str
    elements: tuple[Element, ...] = ()
    index: IndexRule | None = None
    expectations: Expectations | None = None
    shares: tuple[Share, ...] = ()
    dimensions: tuple[Dimension, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        element_ids = {e.id for e in self.elements}
        if self.index is not None and not set(self.index.elements) <= element_ids:
            msg = f"index names unknown elements {sorted(set(self.index.elements) - element_ids)}"
            raise ValueError(msg)
        share_keys = {s.key for s in self.shares}
        for d in self.dimensions:
            if not set(d.shares) <= share_keys:
                msg = f"dimension {d.dimension} names unknown shares {sorted(set(d.shares) - share_keys)}"
                raise ValueError(msg)
        if self.kind == "papi_proxy" and "proxy" not in self.label.lower():
            msg = "a PAPI-proxy aggregator's label must say 'proxy' (DOMAIN §8.4: never 'PAPI')"
            raise ValueError(msg)
        return self

    @property
    def ref(self) -> tuple[str, str]:
        """(instrument id, version)."""
        return self.instrument_id, self.version


def count_answers(answers: Iterable[tuple[str, AnswerValue]], *, weighted: bool = False) -> Counter[str]:
    """The counters one response adds: ``responses``, ``item:<id>`` and ``item:<id>=<value>``."""
    out: Counter[str] = Counter({RESPONSES: 1})
    if weighted:
        out[WEIGHTED] += 1
    for item_id, value in answers:
        out[f"item:{item_id}"] += 1
        for code in value if isinstance(value, tuple) else (value,):
            out[f"item:{item_id}={code}"] += 1
    return out


def wilson(positive: float, n: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``positive / n`` (n > 0)."""
    p = positive / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(parts: Sequence[tuple[float, float]], z: float = Z95) -> tuple[float, float, float]:
    """(mean, low, high) of proportions given as (p, n): normal interval, SE = mean of the parts' SEs."""
    mean = sum(p for p, _ in parts) / len(parts)
    se = sum(math.sqrt(p * (1 - p) / n) for p, n in parts) / len(parts)
    return mean, max(0.0, mean - z * se), min(1.0, mean + z * se)


@dataclass(frozen=True, slots=True)
class SurveyValue:
    """A survey indicator: numerator, n, value 0..1 and its 95% interval, or N/A with the reason."""

    key: str
    name: str
    numerator: float | None
    n: float
    value: float | None
    ci_low: float | None
    ci_high: float | None
    ci_method: str
    na_reason: str | None
    detail: str
    source: str


def _r(x: float) -> float:
    return round(x, DECIMALS)


class _Calc:
    def __init__(self, agg: Aggregator, counters: Mapping[str, float]) -> None:
        self.agg = agg
        self.c = counters

    def get(self, key: str) -> float:
        return float(self.c.get(key, 0.0))

    def answered(self, item: str, exclude: Sequence[str] = ()) -> float:
        return self.get(f"item:{item}") - sum(self.get(f"item:{item}={x}") for x in exclude)

    def positive(self, item: str, codes: Sequence[str]) -> float:
        return sum(self.get(f"item:{item}={x}") for x in codes)

    def proportion(self, key: str, name: str, pos: float, n: float, *, source: str, detail: str = "") -> SurveyValue:
        if n <= 0:
            return SurveyValue(
                key,
                name,
                None,
                0.0,
                None,
                None,
                None,
                "wilson",
                "empty_denominator",
                "no answers in this period (n = 0)",
                source,
            )
        low, high = wilson(pos, n)
        return SurveyValue(key, name, pos, n, _r(pos / n), _r(low), _r(high), "wilson", None, detail, source)

    def mean(self, key: str, name: str, parts: Sequence[SurveyValue], source: str) -> SurveyValue:
        missing = [p.key for p in parts if p.value is None]
        if missing:
            return SurveyValue(
                key,
                name,
                None,
                0.0,
                None,
                None,
                None,
                "normal_conservative",
                "empty_denominator",
                f"needs every part; no answers for {', '.join(missing)}",
                source,
            )
        exact = [(p.numerator / p.n, p.n) for p in parts if p.numerator is not None]
        value, low, high = mean_interval(exact)
        n = min(p.n for p in parts)
        return SurveyValue(
            key,
            name,
            None,
            n,
            _r(value),
            _r(low),
            _r(high),
            "normal_conservative",
            None,
            f"mean of {len(parts)}; n = the smallest part's n; SE = mean of the parts' SEs",
            source,
        )


def aggregate(agg: Aggregator, counters: Mapping[str, float]) -> list[SurveyValue]:
    """Every indicator of one instrument version for one unit and period, from its counters."""
    calc = _Calc(agg, counters)
    p = agg.key_prefix
    out: list[SurveyValue] = []
    responses = calc.get(RESPONSES)
    out.append(
        SurveyValue(
            f"{p}.responses",
            "Số phiếu (n)",
            responses,
            responses,
            responses,
            None,
            None,
            "",
            None,
            f"{calc.get(WEIGHTED):g} carry a weight (not applied)",
            agg.source,
        )
    )
    satisfaction: dict[str, SurveyValue] = {}
    for e in agg.elements:
        if e.satisfaction is not None:
            rule = e.satisfaction
            v = calc.proportion(
                f"{p}.{e.id}.satisfaction",
                f"Hài lòng: {e.name}",
                calc.positive(rule.item, rule.positive),
                calc.answered(rule.item, rule.exclude),
                source=f"DOMAIN §7.3 S_e [U]; {agg.label}",
            )
            satisfaction[e.id] = v
            out.append(v)
        if e.judgements is not None:
            j = e.judgements
            pos = sum(calc.positive(i, j.positive) for i in j.items)
            n = sum(calc.answered(i) for i in j.items)
            out.append(
                calc.proportion(
                    f"{p}.{e.id}.judgement",
                    f"Nhận định tích cực: {e.name}",
                    pos,
                    n,
                    source=f"DOMAIN §7.3 J_e [U]; {agg.label}",
                    detail="pooled over the element's judgement items; the interval treats judgements as independent",
                )
            )
    if agg.index is not None:
        key, name = f"{p}.index", agg.index.label
        if agg.index.rule == "none":
            out.append(
                SurveyValue(
                    key,
                    name,
                    None,
                    responses,
                    None,
                    None,
                    None,
                    "",
                    "not_computed",
                    agg.index.na_detail,
                    agg.index.source,
                )
            )
        else:
            out.append(calc.mean(key, name, [satisfaction[e] for e in agg.index.elements], agg.index.source))
    if agg.expectations is not None:
        x = agg.expectations
        for option in x.options:
            out.append(
                calc.proportion(
                    f"{p}.expectation.{option}",
                    f"Mong đợi: {option}",
                    calc.get(f"item:{x.item}={option}"),
                    responses,
                    source=f"DOMAIN §7.3 expectation share [I]; {agg.label}",
                    detail="share of all respondents (n = responses)",
                )
            )
    shares: dict[str, SurveyValue] = {}
    for s in agg.shares:
        v = calc.proportion(
            f"{p}.{s.key}",
            s.name,
            calc.positive(s.item, s.positive),
            calc.answered(s.item, s.exclude),
            source=f"{agg.label}; {agg.source}",
        )
        shares[s.key] = v
        out.append(v)
    for d in agg.dimensions:
        out.append(
            calc.mean(
                f"{p}.d{d.dimension}",
                f"{agg.label} — D{d.dimension} {d.name}",
                [shares[k] for k in d.shares],
                f"DOMAIN §8.4 [I]; {agg.label}",
            )
        )
    return out
