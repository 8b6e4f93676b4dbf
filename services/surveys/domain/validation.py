"""Answers checked against the instrument version they were given with: every problem named, nothing guessed.

The validator takes what a way in received as plain JSON values (``Any``: a kiosk, a partner system or a
CSV row may send anything) and returns either the normalised answers and profile, or *every* violation
found, each as (field, value, rule). It never raises on input: a respondent's typo must become a precise
refusal, not a crash (a hypothesis property in the tests feeds it arbitrary JSON).

Normalising means: answers in questionnaire order, one per item, multi-choice options in the instrument's
order. Nothing is coerced: the text "4" is not the scale point 4 and ``true`` is not 1 (the contract keeps
those apart on the wire too); a CSV importer converts its cells with the instrument before calling this.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contracts.surveys import Answer, RespondentProfile, RespondentSex, RespondentType
from services.surveys.domain.instrument import Instrument, Item, ItemKind

__all__ = ["MAX_ANSWERS", "Valid", "Violation", "validate_answers"]

#: more answers than any questionnaire has items is refused before looking at them (bounded work per input)
MAX_ANSWERS = 500
_MA_TTHC = re.compile(r"^\d\.\d{6}$")
_PROFILE_FIELDS = frozenset({"type", "age_band", "sex", "ethnicity"})
_SEXES = tuple(s.value for s in RespondentSex)


@dataclass(frozen=True)
class Violation:
    """One reason a submission is refused: the field, the value received, and the rule it breaks."""

    field: str
    value: Any
    rule: str

    def __str__(self) -> str:
        return f"{self.field}: {_short(self.value)}: {self.rule}"


@dataclass(frozen=True)
class Valid:
    """A submission that satisfies its instrument, normalised."""

    answers: tuple[Answer, ...]
    respondent: RespondentProfile
    policy_group: str | None
    ma_tthc: str | None
    weight: float | None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def validate_answers(  # noqa: PLR0917 - each argument is one field of the submission
    instrument: Instrument,
    answers: Any,
    respondent: Any,
    policy_group: Any = None,
    ma_tthc: Any = None,
    weight: Any = None,
) -> Valid | list[Violation]:
    """Check a submission's parts against ``instrument``; the normalised submission or every violation."""
    problems: list[Violation] = []
    by_item = _answers_by_item(answers, problems)
    normalised = _check_items(instrument, by_item, problems)
    profile = _check_profile(instrument, respondent, problems)
    group = _check_policy_group(instrument, policy_group, problems)
    if ma_tthc is not None and not (isinstance(ma_tthc, str) and _MA_TTHC.match(ma_tthc)):
        problems.append(Violation("ma_tthc", ma_tthc, "a MaTTHC is a digit, a dot and six digits, e.g. 1.001776"))
    checked_weight = _check_weight(instrument, weight, problems)
    if policy_group is None and instrument.needs_policy_group:
        for answer in normalised:
            if answer.item_id in instrument.needs_policy_group:
                problems.append(Violation(f"answers.{answer.item_id}", answer.value, "needs the policy_group surveyed"))
    if problems or profile is None:
        return problems or [Violation("respondent", respondent, "invalid respondent profile")]
    return Valid(tuple(normalised), profile, group, ma_tthc, checked_weight)


def _answers_by_item(answers: Any, problems: list[Violation]) -> Mapping[str, Any]:
    """Answers as item -> value, from a mapping or from the contract's list of {item_id, value}."""
    if type(answers) is dict and 0 < len(answers) <= MAX_ANSWERS and all(type(k) is str for k in answers):
        return answers  # a JSON object, the usual case: already item -> value (read, never changed)
    return _pairs_by_item(answers, problems)


def _pairs_by_item(answers: Any, problems: list[Violation]) -> dict[str, Any]:
    if isinstance(answers, Mapping):
        pairs = list(answers.items())
    elif isinstance(answers, list | tuple):
        pairs = []
        for index, entry in enumerate(answers[: MAX_ANSWERS + 1]):
            if isinstance(entry, Mapping) and set(entry) == {"item_id", "value"}:
                pairs.append((entry["item_id"], entry["value"]))
            else:
                problems.append(Violation(f"answers[{index}]", entry, "an answer is an object {item_id, value}"))
    else:
        problems.append(Violation("answers", answers, "answers are an object item id -> value, or a list"))
        return {}
    if len(pairs) > MAX_ANSWERS:
        problems.append(Violation("answers", len(pairs), f"more than {MAX_ANSWERS} answers"))
        return {}
    if not pairs and not problems:
        problems.append(Violation("answers", answers, "at least one answer is needed"))
    by_item: dict[str, Any] = {}
    for item_id, value in pairs:
        if not isinstance(item_id, str):
            problems.append(Violation("answers", item_id, "an item id is a string"))
        elif item_id in by_item:
            problems.append(Violation(f"answers.{item_id}", value, "answered more than once"))
        else:
            by_item[item_id] = value
    return by_item


#: validated answers by (item, type, value): an Answer is a frozen value, and a questionnaire's items have a
#: few dozen possible answers each, so each is validated once per process instead of once per submission
#: (building ~30 answer models was the largest single cost of a submission). Bounded: past the limit
#: (multi-choice combinations of many instruments) answers are validated as they come.
_ANSWERS: dict[tuple[str, type, object], Answer] = {}
_ANSWERS_LIMIT = 20_000


def _answer(item_id: str, value: int | str | tuple[str, ...]) -> Answer:
    key = (item_id, type(value), value)  # the type too: True == 1 and hashes alike
    found = _ANSWERS.get(key)
    if found is None:
        found = Answer(item_id=item_id, value=value)
        if len(_ANSWERS) < _ANSWERS_LIMIT:
            _ANSWERS[key] = found
    return found


@dataclass(frozen=True)
class _Checks:
    """What checking answers needs of one instrument, computed once: its item ids, and per item in order the
    answers valid exactly as sent (see :meth:`Instrument.accepted_as_is`) with, once seen, their shared
    :class:`Answer` by value, and for a multi-choice item its valid selections as sent -> shared answer."""

    instrument: Instrument  # held, so that the id() it is cached by stays this instrument's
    item_ids: frozenset[str]
    items: tuple[tuple[Item, frozenset[int | str], dict[object, Answer]], ...]


_CHECKS: dict[int, _Checks] = {}
#: selections remembered per multi-choice item (their combinations grow fast with the options)
_SELECTIONS_LIMIT = 4096


def _checks(instrument: Instrument) -> _Checks:
    found = _CHECKS.get(id(instrument))
    if found is None or found.instrument is not instrument:
        if len(_CHECKS) >= 256:  # instruments are a handful per catalog; tests build many
            _CHECKS.clear()
        found = _CHECKS[id(instrument)] = _Checks(
            instrument,
            frozenset(item.id for item in instrument.items()),
            tuple((item, as_is, {}) for item, as_is in instrument.accepted_as_is()),
        )
    return found


def _check_items(instrument: Instrument, by_item: Mapping[str, Any], problems: list[Violation]) -> tuple[Answer, ...]:
    checks = _checks(instrument)
    if not checks.item_ids.issuperset(by_item):
        for item_id, value in by_item.items():
            if item_id not in checks.item_ids:
                problems.append(Violation(f"answers.{item_id}", value, f"no such item in {instrument.key}"))
    normalised: list[Answer] = []
    for item, as_is, seen in checks.items:
        value = by_item.get(item.id)
        if value is None:
            if item.required:
                problems.append(Violation(f"answers.{item.id}", None, f"required by {instrument.key}"))
            continue
        answer = _as_sent(item, as_is, seen, value)
        if answer is None:
            checked = _check_value(instrument, item, value, problems)
            if checked is None:
                continue
            answer = _answer(item.id, checked)
            selection = _selection(item, value)
            if selection is not None and len(seen) < _SELECTIONS_LIMIT:
                seen[selection] = answer
        normalised.append(answer)
    return tuple(normalised) if not problems else ()


def _as_sent(item: Item, as_is: frozenset[int | str], seen: dict[object, Answer], value: Any) -> Answer | None:
    """The shared answer of a value valid exactly as sent (a scale point, an option, a selection seen valid
    before: the check depends on the item and the value only), else ``None`` (the full check decides)."""
    kind = type(value)
    # exact types: true is not the scale point 1, and an int subclass takes the full check
    if kind is int or kind is str:
        answer = seen.get(value)
        if answer is None and value in as_is:
            answer = seen[value] = _answer(item.id, value)
        return answer
    selection = _selection(item, value)
    return None if selection is None else seen.get(selection)


def _selection(item: Item, value: Any) -> tuple[str, ...] | None:
    """A multi-choice answer as sent (a JSON list of texts), as a key; ``None`` for anything else."""
    if type(value) is list and item.kind is ItemKind.MULTI_CHOICE and all(type(v) is str for v in value):
        return tuple(value)
    return None


def _check_value(
    instrument: Instrument, item: Item, value: Any, problems: list[Violation]
) -> int | str | tuple[str, ...] | None:
    checked: int | str | tuple[str, ...] | Violation
    if item.kind is ItemKind.SCALE:
        checked = _scale_value(instrument, item, value)
    elif item.kind is ItemKind.CHOICE:
        options = item.options or {}
        ok = isinstance(value, str) and value in options
        checked = value if ok else Violation("", value, f"one of the options {sorted(options)}")
    else:
        checked = _multi_value(item, value)
    if isinstance(checked, Violation):
        problems.append(Violation(f"answers.{item.id}", checked.value, checked.rule))
        return None
    return checked


def _scale_value(instrument: Instrument, item: Item, value: Any) -> int | Violation:
    assert item.scale is not None  # checked when the instrument was loaded
    points = instrument.scales[item.scale].points
    # bool is an int in Python: true must not become the scale point 1
    if not isinstance(value, int) or isinstance(value, bool):
        return Violation("", value, f"a point of the scale {item.scale!r}: one of {sorted(points)}")
    if value not in points:
        return Violation("", value, f"out of the scale {item.scale!r}: one of {sorted(points)}")
    return value


def _multi_value(item: Item, value: Any) -> tuple[str, ...] | Violation:
    options = item.options or {}
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        return Violation("", value, f"a list of options from {sorted(options)}")
    unknown = [v for v in value if v not in options]
    if unknown:
        return Violation("", unknown[:10], f"not options of the item: {sorted(options)}")
    if len(set(value)) != len(value):
        return Violation("", value, "an option is chosen more than once")
    most = item.max_choices or len(options)
    if not item.min_choices <= len(value) <= most:
        return Violation("", value, f"choose between {item.min_choices} and {most} options")
    chosen = set(value)
    return tuple(code for code in options if code in chosen)


def _check_profile(instrument: Instrument, respondent: Any, problems: list[Violation]) -> RespondentProfile | None:
    if not isinstance(respondent, Mapping):
        problems.append(Violation("respondent", respondent, "an object {type, age_band, sex, ethnicity?}"))
        return None
    spec = instrument.respondent
    before = len(problems)
    for name in respondent:
        if name not in _PROFILE_FIELDS:
            rule = "not recorded: the profile holds bands only (type, age_band, sex, ethnicity), no personal data"
            problems.append(Violation(f"respondent.{name}", respondent[name], rule))
    kind = respondent.get("type")
    if kind not in spec.types:  # StrEnum members equal their values; a non-str never matches
        allowed_types = [t.value for t in spec.types]
        problems.append(Violation("respondent.type", kind, f"one of {allowed_types} for {instrument.key}"))
    age = respondent.get("age_band")
    if age not in spec.age_bands:
        problems.append(Violation("respondent.age_band", age, f"one of the bands {list(spec.age_bands)}"))
    sex = respondent.get("sex")
    if sex not in _SEXES:
        problems.append(Violation("respondent.sex", sex, f"one of {list(_SEXES)}"))
    ethnicity = respondent.get("ethnicity")
    if ethnicity is not None:
        if spec.ethnicity is None:
            problems.append(Violation("respondent.ethnicity", ethnicity, f"not asked by {instrument.key}"))
        elif ethnicity not in spec.ethnicity:
            problems.append(Violation("respondent.ethnicity", ethnicity, f"one of the bands {list(spec.ethnicity)}"))
    if len(problems) > before:
        return None
    return RespondentProfile(
        type=RespondentType(str(kind)), age_band=str(age), sex=RespondentSex(str(sex)), ethnicity=ethnicity
    )


def _check_policy_group(instrument: Instrument, group: Any, problems: list[Violation]) -> str | None:
    if group is None:
        return None
    if not instrument.policy_groups:
        problems.append(Violation("policy_group", group, f"{instrument.key} is not a policy survey"))
        return None
    if group not in instrument.policy_groups:
        problems.append(Violation("policy_group", group, f"one of {list(instrument.policy_groups)}"))
        return None
    return str(group)


def _check_weight(instrument: Instrument, weight: Any, problems: list[Violation]) -> float | None:
    if weight is None:
        if instrument.weight == "required":
            problems.append(Violation("weight", None, f"{instrument.key} requires a design weight"))
        return None
    if instrument.weight == "none":
        problems.append(Violation("weight", weight, f"{instrument.key} has no weighting design"))
        return None
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight < 1e9:
        problems.append(Violation("weight", weight, "a positive number"))
        return None
    return float(weight)
