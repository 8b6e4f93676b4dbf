"""What one column of the province table needs, so a table of 168 communes computes only that.

Ranking the communes by ``r06.on_time_rate`` needs one spec'd indicator per commune and no open dossiers;
computing every indicator and the whole 766 score per commune (as the unit page does) cost ≈ 80 ms of CPU
for 168 communes, and counting the dossiers open at the cut-off ≈ 55 ms of database time for 50,000
dossiers. A :class:`ColumnPlan` names the spec'd indicators to compute (those the key reads, the 766
indicators of the groups it needs, and whatever they multiply by), the 766 groups to score (a sub-
configuration: groups score independently, so a group's or an indicator's figures are those of the full
score) and whether the open counts are read at all.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass

from services.scoring.domain.config import D766Config, D766Group
from services.scoring.domain.indicators import SPECS, OpenCounts

__all__ = ["Cell", "CellMemo", "ColumnPlan", "plan_column"]

#: (value, numerator, denominator, N/A reason) of one commune in one column
Cell = tuple[float | None, float | None, float | None, str | None]


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """The spec'd indicators to compute, the 766 configuration to score (None: no scoring), open counts or not."""

    keys: tuple[str, ...]
    score: D766Config | None
    needs_open: bool


def _with_factors(keys: Iterable[str]) -> tuple[str, ...]:
    """``keys`` and the indicators they are multiplied by, in SPECS order (factors first is not required:
    ``compute`` evaluates a factor itself when it has not been done yet)."""
    wanted = set(keys)
    todo = list(wanted)
    while todo:
        factor = SPECS[todo.pop()].times
        if factor is not None and factor not in wanted:
            wanted.add(factor)
            todo.append(factor)
    return tuple(k for k in SPECS if k in wanted)


def _groups_for(key: str, config: D766Config) -> tuple[D766Group, ...]:
    if key == "d766.total":
        return config.groups
    if key.startswith("d766.group."):
        return tuple(g for g in config.groups if g.key == key.removeprefix("d766.group."))
    return tuple(g for g in config.groups if any(i.key == key for i in g.indicators))


def plan_column(key: str, config: D766Config) -> ColumnPlan:
    """The plan of a rankable key: a spec'd indicator, a 766 indicator or group, or ``d766.total``."""
    groups = _groups_for(key, config)
    keys = {key} & SPECS.keys()
    keys |= {i.computation for g in groups for i in g.indicators if i.computation in SPECS}
    ordered = _with_factors(keys)
    needs_open = any(
        part is not None and part.open is not None
        for k in ordered
        for part in (SPECS[k].numerator, SPECS[k].denominator)
    )
    if not groups:
        score = None
    elif groups == config.groups:
        score = config
    else:
        # not validated again: the group maxima of a subset do not sum to the index's maximum, by design
        score = config.model_copy(update={"groups": groups})
    return ColumnPlan(ordered, score, needs_open)


class CellMemo:
    """Scored cells by their inputs: a commune whose counters and open counts have not changed since the last
    refresh of a 766 column is not scored again (≈ 0.45 ms of CPU a commune: 75 ms for a province of 168,
    paid every refresh otherwise). A cell is a pure function of the column (key, configuration version) and
    the commune's inputs, so equal inputs share it whatever the commune. Bounded: cleared when full."""

    def __init__(self, max_entries: int = 8192) -> None:
        self.max_entries = max_entries
        self._cells: dict[Hashable, Cell] = {}
        self.misses = 0

    def cell(
        self,
        column: tuple[str, str],
        counters: Mapping[str, float],
        opened: OpenCounts,
        make: Callable[[], Cell],
        outside: Hashable = (),
    ) -> Cell:
        """The cell of these inputs (``outside``: the values not computed from the counters, e.g. the catalogue
        and group-5 values), made by ``make`` if not known (dict operations are atomic: the column may be
        computed in a worker thread while another column of the same key is, with no lock)."""
        key = (column, tuple(sorted(counters.items())), opened, outside)
        found = self._cells.get(key)
        if found is not None:
            return found
        self.misses += 1
        if len(self._cells) >= self.max_entries:
            self._cells.clear()
        made = self._cells[key] = make()
        return made
