"""Loading the versioned rulesets (and provinces' overrides) from YAML into the domain's RulesBook."""

from __future__ import annotations

import functools
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from services.dossiers.domain.rules import PROVINCIAL_CHOICES, RulesBook, Ruleset, SupplementPolicy

__all__ = ["DEFAULT_RULESETS", "load_rules"]

DEFAULT_RULESETS = Path(__file__).with_name("config") / "rulesets.yaml"


class RulesConfigError(ValueError):
    """A rules file is wrong; the message names the file, the field and the value."""


@functools.cache
def load_rules(path: Path = DEFAULT_RULESETS, overrides_dir: Path | None = None) -> RulesBook:
    """The rules book of ``path``, with every ``<province>.yaml`` of ``overrides_dir`` applied on lookup."""
    document = _read(path)
    rulesets = []
    for index, raw in enumerate(document.get("rulesets") or []):
        where = f"{path}: rulesets[{index}]"
        try:
            rulesets.append(
                Ruleset(
                    id=str(raw["id"]),
                    version=str(raw["version"]),
                    basis=str(raw["basis"]),
                    effective_from=_date(raw["effective_from"], where),
                    effective_until=None
                    if raw.get("effective_until") is None
                    else _date(raw["effective_until"], where),
                    supplement_policy=SupplementPolicy(raw["supplement_policy"]),
                    apology_min_working_days_before_due=float(raw["apology_min_working_days_before_due"]),
                    apology_max_reschedules=int(raw["apology_max_reschedules"]),
                    max_processing_supplements_766=int(raw["max_processing_supplements_766"]),
                    forms={str(k): str(v) for k, v in (raw.get("forms") or {}).items()},
                    sources={str(k): str(v) for k, v in (raw.get("sources") or {}).items()},
                )
            )
        except (KeyError, ValueError, TypeError) as exc:
            msg = f"{where}: {exc!r}"
            raise RulesConfigError(msg) from None
    if not rulesets:
        msg = f"{path}: no rulesets"
        raise RulesConfigError(msg)
    known = {r.id for r in rulesets}
    overrides: dict[str, dict[str, dict[str, object]]] = {}
    if overrides_dir is not None and overrides_dir.is_dir():
        for file in sorted(overrides_dir.glob("*.yaml")):
            province = file.stem
            for ruleset_id, changes in (_read(file) or {}).items():
                if ruleset_id not in known:
                    msg = f"{file}: unknown ruleset {ruleset_id!r} (known: {sorted(known)})"
                    raise RulesConfigError(msg)
                for name in changes or {}:
                    if name not in PROVINCIAL_CHOICES:
                        msg = f"{file}: {ruleset_id}.{name} is not a provincial choice ({sorted(PROVINCIAL_CHOICES)})"
                        raise RulesConfigError(msg)
                overrides.setdefault(province, {})[ruleset_id] = _typed(dict(changes or {}), file)
    try:
        return RulesBook(rulesets, overrides)
    except ValueError as exc:
        raise RulesConfigError(f"{path}: {exc}") from None


def _typed(changes: dict[str, Any], file: Path) -> dict[str, object]:
    try:
        if "supplement_policy" in changes:
            changes["supplement_policy"] = SupplementPolicy(changes["supplement_policy"])
        if "apology_min_working_days_before_due" in changes:
            changes["apology_min_working_days_before_due"] = float(changes["apology_min_working_days_before_due"])
        if "apology_max_reschedules" in changes:
            changes["apology_max_reschedules"] = int(changes["apology_max_reschedules"])
    except ValueError as exc:
        raise RulesConfigError(f"{file}: {exc}") from None
    return changes


def _read(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RulesConfigError(f"{path}: {exc}") from None
    if loaded is not None and not isinstance(loaded, dict):
        msg = f"{path}: expected a mapping at the top level"
        raise RulesConfigError(msg)
    return loaded or {}


def _date(value: object, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        msg = f"{where}: {value!r} is not a date (YYYY-MM-DD)"
        raise RulesConfigError(msg) from None


def _optional_date(value: object, where: str) -> date | None:
    return None if value is None else _date(value, where)
