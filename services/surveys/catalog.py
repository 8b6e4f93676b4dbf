"""The instruments in use: the shipped national ones plus a province's files, loaded once at start-up.

A bad file stops the service at start-up with the file and the problem named (:class:`InstrumentError`):
collecting answers against a questionnaire that silently lost an item would be worse than not starting.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

import yaml
from pydantic import ValidationError

from services.surveys.domain import Instrument

__all__ = ["SHIPPED_DIR", "InstrumentCatalog", "InstrumentError", "load_catalog"]

#: the national instruments shipped with the service
SHIPPED_DIR = Path(__file__).resolve().parent / "instruments"


class InstrumentError(ValueError):
    """An instrument file cannot be used (unreadable, invalid, or a version that already exists)."""


class InstrumentCatalog:
    """Instruments by (id, version), and which version of an id is in force on a day."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self._by_key: dict[tuple[str, str], Instrument] = {}
        for instrument in instruments:
            key = (instrument.id, instrument.version)
            if key in self._by_key:
                msg = f"{instrument.key} is defined twice (a published version is immutable: add a new version)"
                raise InstrumentError(msg)
            self._by_key[key] = instrument

    def get(self, instrument_id: str, version: str) -> Instrument | None:
        """The instrument version, if it exists."""
        return self._by_key.get((instrument_id, version))

    def in_force(self, instrument_id: str, day: date) -> Instrument | None:
        """The version of ``instrument_id`` in force on ``day`` (the latest to start, if periods overlap)."""
        candidates = [i for (iid, _), i in self._by_key.items() if iid == instrument_id and i.in_force(day)]
        return max(candidates, key=lambda i: i.effective_from, default=None)

    def versions(self, instrument_id: str) -> list[Instrument]:
        """Every version of an id, oldest first."""
        found = (i for (iid, _), i in self._by_key.items() if iid == instrument_id)
        return sorted(found, key=lambda i: i.effective_from)

    def all(self) -> list[Instrument]:
        """Every instrument, by id then start date."""
        return sorted(self._by_key.values(), key=lambda i: (i.id, i.effective_from))


def _read(path: Path) -> Instrument:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        msg = f"{path}: cannot read: {exc}"
        raise InstrumentError(msg) from None
    try:
        return Instrument.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:5])
        msg = f"{path}: not a valid instrument: {problems}"
        raise InstrumentError(msg) from None


def load_catalog(extra_dir: Path | None = None) -> InstrumentCatalog:
    """The shipped instruments plus every ``*.yaml`` in ``extra_dir`` (a province's own)."""
    paths = sorted(SHIPPED_DIR.glob("*.yaml"))
    if extra_dir is not None:
        if not extra_dir.is_dir():
            msg = f"{extra_dir}: the instruments directory does not exist"
            raise InstrumentError(msg)
        paths += sorted(extra_dir.glob("*.yaml"))
    return InstrumentCatalog(_read(path) for path in paths)
