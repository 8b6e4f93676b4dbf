"""Plausible answers to a questionnaire, read from its instrument document (no import of the surveys service).

The document is what the surveys service serves at ``GET /v1/instruments/{id}/versions/{version}`` and
what its instrument YAML files hold (same shape): ``scales`` (``points``, ``positive``), ``elements[].items[]``
(``id``, ``kind`` scale/choice/multi_choice, ``scale``, ``options``, ``min_choices``, ``max_choices``,
``required``, ``needs_policy_group``), ``respondent`` (``types``, ``age_bands``, ``ethnicity``),
``policy_groups``, ``effective_from``/``effective_to``.

Satisfaction follows a commune's "mood" (share of positive scale points, DOMAIN §7.3 counts the
``positive`` points): most answers are positive, as published SIPAS results are (≈ 80-85 %).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

__all__ = ["InstrumentDoc", "load_instrument_file"]


@dataclass(frozen=True)
class InstrumentDoc:
    """The parts of an instrument document the simulator needs."""

    id: str
    version: str
    raw: dict[str, Any]

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> InstrumentDoc:
        """From the JSON/YAML document (raises ``ValueError`` when it is not an instrument)."""
        try:
            return cls(id=str(doc["id"]), version=str(doc["version"]), raw=doc)
        except (KeyError, TypeError) as exc:
            msg = f"not an instrument document (missing {exc})"
            raise ValueError(msg) from None

    def in_force(self, day: date) -> bool:
        """Whether the version is in force on ``day``."""
        start = _day(self.raw.get("effective_from"))
        end = _day(self.raw.get("effective_to"))
        return (start is None or start <= day) and (end is None or day <= end)

    def respondent(self, rng: random.Random) -> dict[str, Any]:
        """A banded profile allowed by the instrument."""
        spec = self.raw["respondent"]
        profile: dict[str, Any] = {
            "type": rng.choices(list(spec["types"]), weights=[9 if t == "citizen" else 1 for t in spec["types"]])[0],
            "age_band": rng.choice(list(spec["age_bands"])),
            "sex": rng.choice(["male", "female"]),
        }
        if spec.get("ethnicity"):
            bands = list(spec["ethnicity"])
            profile["ethnicity"] = rng.choices(bands, weights=[6] + [1] * (len(bands) - 1))[0]
        return profile

    def answers(self, rng: random.Random, *, positive_share: float) -> tuple[dict[str, Any], str | None]:
        """Item id -> value for every required item and most optional ones; and the policy group if asked."""
        scales: dict[str, Any] = self.raw.get("scales") or {}
        groups = list(self.raw.get("policy_groups") or ())
        policy_group = rng.choice(groups) if groups and rng.random() < 0.5 else None
        out: dict[str, Any] = {}
        for element in self.raw["elements"]:
            for item in element["items"]:
                if item.get("needs_policy_group") and policy_group is None:
                    continue
                if not item.get("required", True) and rng.random() < 0.4:
                    continue
                out[item["id"]] = _value(item, scales, rng, positive_share)
        return out, policy_group


def _value(item: dict[str, Any], scales: dict[str, Any], rng: random.Random, positive_share: float) -> Any:
    kind = item["kind"]
    if kind == "scale":
        scale = scales[item["scale"]]
        points = sorted(int(p) for p in scale["points"])
        positive = [int(p) for p in scale["positive"]]
        negative = [p for p in points if p not in positive] or positive
        return rng.choice(positive if rng.random() < positive_share else negative)
    options = list(item["options"])
    if kind == "choice":
        # experience items ("were you harassed?") are mostly the first option ("no")
        return options[0] if rng.random() < positive_share else rng.choice(options)
    low = int(item.get("min_choices") or 1)
    high = min(int(item.get("max_choices") or len(options)), len(options))
    return rng.sample(options, rng.randint(low, max(low, high)))


def _day(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def load_instrument_file(path: Path) -> InstrumentDoc:
    """An instrument from a YAML (or JSON) file, e.g. one of the surveys service's shipped files."""
    import yaml  # noqa: PLC0415 - only the dry run without a surveys service reads files

    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        msg = f"{path}: not an instrument document"
        raise ValueError(msg)
    return InstrumentDoc.from_document(doc)
