"""Official PAPI provincial scores, imported from a file (DOMAIN §8.2, §8.4, §11.1, §11.2): pure validation.

PAPI cannot be recomputed by the system (national sample, post-stratification weights, indicator rescaling not
published, §8.2-8.3), so the published scores are *ingested*. A file is a list of flat rows (CSV with a header,
or a JSON array of objects) with the columns:

``year, province_code, province_name, dimension, sub_dimension, name, score, source``

- a dimension row: ``dimension`` 1..8, ``sub_dimension`` empty, score 1..10;
- a sub-dimension row: ``sub_dimension`` e.g. ``6.1`` (its dimension's number first);
- a total row: ``dimension`` = ``total`` (the unweighted sum of the dimensions, max 80; 60 before 2018).

Checks (a failing group is rejected whole, with the reason; the other groups are kept): a dimension with
sub-dimensions must equal their sum within rounding, and a total given with its dimensions must equal their
sum within rounding. "Within rounding" = (terms + 1) x half a unit of the finest published decimal (each
published figure is rounded once): 4 decimals, 4 sub-dimensions -> 0.00025; 2 decimals -> 0.025.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = ["FIELDS", "PapiRow", "Rejected", "tolerance", "validate_rows"]

FIELDS = ("year", "province_code", "province_name", "dimension", "sub_dimension", "name", "score", "source")
TOTAL = "total"


@dataclass(frozen=True, slots=True)
class PapiRow:
    """One accepted score: a dimension (``sub_dimension`` ''), a sub-dimension, or the total (dimension 0)."""

    year: int
    province_code: str
    province_name: str
    dimension: int
    sub_dimension: str
    name: str
    score: float
    decimals: int
    source: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """Input rows refused together, and why."""

    line_numbers: tuple[int, ...]
    key: str
    reason: str


def _decimals(text: str) -> int:
    exponent = Decimal(text).as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def tolerance(values: Sequence[PapiRow]) -> float:
    """Half a unit of the finest decimal among ``values``, once per figure (the terms and their sum)."""
    finest = max(v.decimals for v in values)
    return len(values) * 0.5 * 10.0 ** (-finest) + 1e-12


def _parse(line: int, raw: Mapping[str, object]) -> PapiRow | Rejected:
    def text(name: str) -> str:
        value = raw.get(name)
        return "" if value is None else str(value).strip()

    key = f"{text('year')}/{text('province_code')}/{text('dimension')}/{text('sub_dimension')}"
    try:
        year = int(text("year"))
        code = text("province_code")
        if not (len(code) == 2 and code.isdigit()):
            return Rejected((line,), key, f"province_code {code!r} is not a 2-digit code")
        dim_text = text("dimension").lower()
        dimension = 0 if dim_text == TOTAL else int(dim_text)
        score_text = text("score")
        score = float(Decimal(score_text))
        decimals = _decimals(score_text)
    except (ValueError, InvalidOperation) as exc:
        return Rejected((line,), key, f"unreadable value: {exc}")
    sub = text("sub_dimension")
    checks = (
        (not 2000 <= year <= 2100, f"year {year} out of range"),
        (dimension == 0 and bool(sub), "a total row has no sub-dimension"),
        (not 0 <= dimension <= 8, f"dimension {dimension} is not 1..8 or 'total'"),
        (bool(sub) and not sub.startswith(f"{dimension}."), f"sub-dimension {sub!r} not under dimension {dimension}"),
        (dimension > 0 and not sub and not 1 <= score <= 10, f"a dimension scores 1..10, not {score}"),
        (dimension == 0 and not 0 < score <= 80, f"a total scores at most 80, not {score}"),
        (score < 0, "negative score"),
    )
    failed = next((message for bad, message in checks if bad), None)
    if failed is not None:
        return Rejected((line,), key, failed)
    return PapiRow(year, code, text("province_name"), dimension, sub, text("name"), score, decimals, text("source"))


def validate_rows(rows: Iterable[Mapping[str, object]]) -> tuple[list[PapiRow], list[Rejected]]:
    """Accepted rows and rejected groups (each dimension with its sub-dimensions; the total with the dimensions)."""
    rejected: list[Rejected] = []
    parsed: dict[tuple[int, str, int], list[tuple[int, PapiRow]]] = defaultdict(list)
    seen: set[tuple[int, str, int, str]] = set()
    for line, raw in enumerate(rows, start=1):
        row = _parse(line, raw)
        if isinstance(row, Rejected):
            rejected.append(row)
            continue
        ident = (row.year, row.province_code, row.dimension, row.sub_dimension)
        if ident in seen:
            rejected.append(Rejected((line,), "/".join(map(str, ident)), "duplicate row in the file"))
            continue
        seen.add(ident)
        parsed[(row.year, row.province_code, row.dimension)].append((line, row))
    accepted: dict[tuple[int, str, int], list[tuple[int, PapiRow]]] = {}
    refused: set[tuple[int, str]] = set()
    for group, members in parsed.items():
        if group[2] == 0:
            continue
        head = [r for _, r in members if not r.sub_dimension]
        subs = [r for _, r in members if r.sub_dimension]
        if subs and not head:
            rejected.append(
                Rejected(
                    tuple(n for n, _ in members),
                    f"{group[0]}/{group[1]}/{group[2]}",
                    "sub-dimensions without their dimension score",
                )
            )
            refused.add(group[:2])
            continue
        if subs:
            total = sum(r.score for r in subs)
            tol = tolerance([*subs, head[0]])
            if abs(total - head[0].score) > tol:
                rejected.append(
                    Rejected(
                        tuple(n for n, _ in members),
                        f"{group[0]}/{group[1]}/{group[2]}",
                        f"sub-dimensions sum to {total:.6g}, the dimension is {head[0].score:g} "
                        f"(difference {abs(total - head[0].score):.6g} > rounding tolerance {tol:.6g})",
                    )
                )
                refused.add(group[:2])
                continue
        accepted[group] = members
    _check_totals(parsed, accepted, refused, rejected)
    out = [r for members in accepted.values() for _, r in members]
    out.sort(key=lambda r: (r.year, r.province_code, r.dimension, r.sub_dimension))
    rejected.sort(key=lambda r: r.line_numbers)
    return out, rejected


def _check_totals(
    parsed: Mapping[tuple[int, str, int], list[tuple[int, PapiRow]]],
    accepted: dict[tuple[int, str, int], list[tuple[int, PapiRow]]],
    refused: set[tuple[int, str]],
    rejected: list[Rejected],
) -> None:
    """Accept each total unless a dimension of its province-year was refused or all 8 do not sum to it."""
    for group, members in parsed.items():
        if group[2] != 0:
            continue
        line, total_row = members[0]
        key = f"{group[0]}/{group[1]}/total"
        if group[:2] in refused:
            rejected.append(Rejected((line,), key, "a dimension of this province and year was rejected"))
            continue
        heads = [next(r for _, r in m if not r.sub_dimension) for g, m in accepted.items() if g[:2] == group[:2]]
        if len(heads) == 8:
            tol = tolerance([*heads, total_row])
            total = sum(h.score for h in heads)
            if abs(total - total_row.score) > tol:
                rejected.append(
                    Rejected(
                        (line,),
                        key,
                        f"the 8 dimensions sum to {total:.6g}, the total is {total_row.score:g} "
                        f"(difference {abs(total - total_row.score):.6g} > tolerance {tol:.6g})",
                    )
                )
                continue
        accepted[group] = members
