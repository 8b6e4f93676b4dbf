"""Decision 766 group 5 (Mức độ hài lòng) from PAKN and per-dossier citizen ratings (DOMAIN §5.3, §5.5).

Pure: the read side hands in the PAKN (phản ánh, kiến nghị) and ratings of a scope and the instants that bound
a period; this module judges each PAKN at the period's cut-off and forms the four indicators as numerator,
denominator and value, or N/A with the reason — never a made-up value:

- **5.1** share of the PAKN received in the period classified "quy định, chính sách, thủ tục" (the rest are
  "hành vi cán bộ"; 0 points, monitoring);
- **5.2** (PAKN handled on time + PAKN still in progress within time) / (PAKN handled in the period + PAKN in
  progress at the cut-off), the deadlines in working days of F766: refusal ≤ 2 after receipt, supplement
  request ≤ 5, handled (chờ công khai / đã công khai) ≤ 15, publication ≤ 2 after "chờ công khai";
- **5.3** (PAKN received in the period, minus those with more dislikes than likes, overdue, or followed by a
  new PAKN about their result, each PAKN once) / PAKN received in the period;
- **5.4** 100 % minus (overdue-dossier rate + rate of dossiers with a PAKN or a negative rating), both rates over
  the dossiers of 766 2.1 (resolved in the period or open at its cut-off) [I: F766 does not name the base].

The clock of a PAKN starts at ``received_at`` (for a forwarded PAKN the contract defines it as the moment the
forwarding reached the agency) and is not paused by a supplement request [I: F766 says nothing of a pause].
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from eventkit.worktime import WorkingCalendar
from services.scoring.domain.indicators import IndicatorValue, Kind, NaReason

__all__ = [
    "FEEDBACK_KEYS",
    "LIMITS_WORKING_DAYS",
    "NEGATIVE_RATINGS",
    "Pakn",
    "PaknVerdict",
    "RatingRow",
    "Sides",
    "Window",
    "feedback_values",
    "group5",
    "judge",
    "next_deadline",
    "sides",
]

#: F766 5.2 deadlines in working days [V F766 via DOMAIN §5.3]
LIMITS_WORKING_DAYS: Mapping[str, float] = {"reject": 2, "supplement": 5, "handle": 15, "publish": 2}
#: ratings that count as a complaint for 5.4: "Không hài lòng" on the satisfaction scale, a dislike
NEGATIVE_RATINGS = frozenset({"dissatisfied", "dislike"})
FEEDBACK_KEYS = ("d766.5_1", "d766.5_2", "d766.5_3", "d766.5_4")
_SOURCE = "DOMAIN §5.3 group 5 (F766 / vietjack)"


@dataclass(frozen=True, slots=True)
class Pakn:
    """A PAKN as the read model keeps it: when it reached each handling state (the first time)."""

    feedback_id: str
    unitcode: str
    category: str
    received_at: datetime
    dossier_id: str | None = None
    follows_up: str | None = None
    rejected_at: datetime | None = None
    supplement_at: datetime | None = None
    awaiting_publication_at: datetime | None = None
    published_at: datetime | None = None
    likes: int | None = None
    dislikes: int | None = None
    likes_at: datetime | None = None
    #: when the first later PAKN complaining about this one's result was received (None: none so far)
    followed_up_at: datetime | None = None

    @property
    def handled_at(self) -> datetime | None:
        """The first entry into "chờ công khai" or "đã công khai" (handled, F766 5.2)."""
        times = [t for t in (self.awaiting_publication_at, self.published_at) if t is not None]
        return min(times) if times else None

    @property
    def finished_at(self) -> datetime | None:
        """Refused or handled, whichever came first."""
        times = [t for t in (self.rejected_at, self.handled_at) if t is not None]
        return min(times) if times else None


@dataclass(frozen=True, slots=True)
class RatingRow:
    """One per-dossier rating (``vn.cchc.dossier.rated``)."""

    dossier_id: str
    unitcode: str
    rated_at: datetime
    rating: str
    rated_via: str = ""


@dataclass(frozen=True, slots=True)
class Window:
    """A period as group 5 needs it: ``begins`` (inclusive) and the cut-off (exclusive)."""

    begins: datetime
    cut: datetime


@dataclass(frozen=True, slots=True)
class PaknVerdict:
    """A PAKN judged at a cut-off."""

    finished: bool
    on_time: bool
    late_steps: tuple[str, ...] = field(default=())


def _before(t: datetime | None, cut: datetime) -> datetime | None:
    return t if t is not None and t < cut else None


def _late(cal: WorkingCalendar, start: datetime, end: datetime, step: str) -> bool:
    return cal.working_hours_between(start, end) > LIMITS_WORKING_DAYS[step] * cal.hours.hours_per_day + 1e-9


def judge(p: Pakn, cut: datetime, cal: WorkingCalendar) -> PaknVerdict:
    """The 5.2 verdict of a PAKN at ``cut``: facts after the cut-off are not seen."""
    rejected = _before(p.rejected_at, cut)
    supplement = _before(p.supplement_at, cut)
    awaiting = _before(p.awaiting_publication_at, cut)
    published = _before(p.published_at, cut)
    handled = min((t for t in (awaiting, published) if t is not None), default=None)
    late: list[str] = []
    if rejected is not None and (handled is None or rejected <= handled):
        if _late(cal, p.received_at, rejected, "reject"):
            late.append("reject")
        return PaknVerdict(True, not late, tuple(late))
    if supplement is not None and _late(cal, p.received_at, supplement, "supplement"):
        late.append("supplement")
    if handled is None:
        if _late(cal, p.received_at, cut, "handle"):
            late.append("handle")  # still in progress past 15 working days
        return PaknVerdict(False, not late, tuple(late))
    if _late(cal, p.received_at, handled, "handle"):
        late.append("handle")
    if awaiting is not None and _late(cal, awaiting, published or cut, "publish"):
        late.append("publish")  # published late, or not yet published 2 working days after "chờ công khai"
    return PaknVerdict(True, not late, tuple(late))


#: how far past a limit a deadline is set: the verdict turns late only once working time *exceeds* the limit, so
#: the limit's own instant (often a close, e.g. Fri 17:00, equal in working time to Mon 07:00) is still on time
_PAST_LIMIT_HOURS = 1 / 3600


def next_deadline(p: Pakn, cal: WorkingCalendar) -> datetime | None:
    """The instant from which an open PAKN is late by the clock alone, with no new event (None: none ahead).

    In progress (neither refused nor handled): 15 working days after receipt — the refusal and supplement
    limits change nothing by passing (a late refusal or supplement request is judged when it happens). In
    "chờ công khai" and not yet published: 2 working days after it. Refused or published: no deadline. The
    instant is one working second past the limit: :func:`judge` at any cut-off from it on gives the late
    verdict, at any cut-off up to the limit the on-time one. Whether the PAKN is already late for another
    reason is not asked: a deadline that changes no value is simply not published.
    """
    handled = p.handled_at
    if p.rejected_at is not None and (handled is None or p.rejected_at <= handled):
        return None
    if handled is None:
        start, step = p.received_at, "handle"
    elif p.awaiting_publication_at is not None and p.published_at is None:
        start, step = p.awaiting_publication_at, "publish"
    else:
        return None
    return cal.add_working_hours(start, LIMITS_WORKING_DAYS[step] * cal.hours.hours_per_day + _PAST_LIMIT_HOURS)


def _na(key: str, name: str, parts: tuple[float | None, float | None], reason: NaReason, detail: str) -> IndicatorValue:
    return IndicatorValue(key, name, Kind.RATIO, parts[0], parts[1], None, reason, detail, _SOURCE)


def _ratio(key: str, name: str, num: float, den: float, detail: str = "", *, floor: bool = False) -> IndicatorValue:
    if den == 0:
        return _na(key, name, (num, den), NaReason.EMPTY_DENOMINATOR, "nothing to measure in this period")
    value = num / den
    if floor and value < 0:
        value = 0.0
        detail = f"{detail}; the deductions exceed the base, value floored at 0 [I]".lstrip("; ")
    return IndicatorValue(key, name, Kind.RATIO, num, den, round(value, 4), None, detail, _SOURCE)


@dataclass(frozen=True, slots=True)
class Sides:
    """Which PAKN / ratings / dossiers make each side of a group-5 indicator (values and explain agree)."""

    received: tuple[Pakn, ...]
    regulation: tuple[Pakn, ...]
    measured: tuple[Pakn, ...]  # 5.2 denominator
    on_time: tuple[Pakn, ...]  # 5.2 numerator
    unsatisfied: tuple[Pakn, ...]  # 5.3: deducted from the received
    complaints: tuple[str, ...]  # 5.4: dossier ids with a PAKN or a negative rating in the period
    negative_ratings: tuple[RatingRow, ...]
    dossier_pakn: tuple[Pakn, ...]
    ratings_seen: int


def sides(pakn: Iterable[Pakn], ratings: Iterable[RatingRow], w: Window, cal: WorkingCalendar) -> Sides:
    """Split a scope's PAKN and ratings into the sides of each indicator for one window."""
    received, regulation, measured, on_time, unsatisfied, dossier_pakn = [], [], [], [], [], []
    for p in sorted(pakn, key=lambda x: (x.received_at, x.feedback_id)):
        if p.received_at >= w.cut:
            continue
        verdict = judge(p, w.cut, cal)
        finished = p.finished_at if verdict.finished else None
        if finished is None or finished >= w.begins:  # handled in the period, or in progress at its cut-off
            measured.append(p)
            if verdict.on_time:
                on_time.append(p)
        if p.received_at < w.begins:
            continue
        received.append(p)
        if p.category == "regulation":
            regulation.append(p)
        if p.dossier_id is not None:
            dossier_pakn.append(p)
        disliked = (
            p.dislikes is not None and p.likes_at is not None and p.likes_at < w.cut and p.dislikes > (p.likes or 0)
        )
        followed = p.followed_up_at is not None and p.followed_up_at < w.cut
        if disliked or followed or not verdict.on_time:
            unsatisfied.append(p)
    in_window = [r for r in ratings if w.begins <= r.rated_at < w.cut]
    negative = tuple(sorted((r for r in in_window if r.rating in NEGATIVE_RATINGS), key=lambda r: r.rated_at))
    complaints = tuple(sorted({r.dossier_id for r in negative} | {p.dossier_id for p in dossier_pakn if p.dossier_id}))
    return Sides(
        tuple(received),
        tuple(regulation),
        tuple(measured),
        tuple(on_time),
        tuple(unsatisfied),
        complaints,
        negative,
        tuple(dossier_pakn),
        len(in_window),
    )


def feedback_values(s: Sides, d766_2_1: IndicatorValue | None, calendar_version: str) -> dict[str, IndicatorValue]:
    """The group-5 values of one scope and window; ``d766_2_1``: the same scope and window's 766 2.1."""
    cal = f"working days of calendar {calendar_version}"
    out = {
        "d766.5_1": _ratio(
            "d766.5_1",
            "Tỷ lệ PAKN theo phân loại (quy định, chính sách, thủ tục)",
            len(s.regulation),
            len(s.received),
            "share classified 'quy định, chính sách, thủ tục'; the rest are 'hành vi cán bộ'",
        ),
        "d766.5_2": _ratio(
            "d766.5_2",
            "Tiến độ xử lý PAKN",
            len(s.on_time),
            len(s.measured),
            f"refusal ≤ 2, supplement request ≤ 5, handled ≤ 15, publication ≤ 2 {cal}; clock not paused [I]",
        ),
        "d766.5_3": _ratio(
            "d766.5_3",
            "Tỷ lệ hài lòng trong xử lý PAKN",
            len(s.received) - len(s.unsatisfied),
            len(s.received),
            "received minus (more dislikes than likes, overdue at the cut-off, followed by a new PAKN), each once",
        ),
    }
    name = "Tỷ lệ hài lòng trong tiếp nhận, giải quyết TTHC"
    if d766_2_1 is None or d766_2_1.denominator is None or d766_2_1.numerator is None or not d766_2_1.denominator:
        out["d766.5_4"] = _na(
            "d766.5_4", name, (None, None), NaReason.EMPTY_DENOMINATOR, "no dossier resolved or open in this period"
        )
    elif s.ratings_seen == 0 and not s.received:
        out["d766.5_4"] = _na(
            "d766.5_4",
            name,
            (None, d766_2_1.denominator),
            NaReason.MISSING_REFERENCE_DATA,
            "no citizen rating and no PAKN was received for this unit in the period: a system that does not "
            "forward them cannot be told from one without complaints",
        )
    else:
        base = d766_2_1.denominator
        overdue = base - d766_2_1.numerator
        out["d766.5_4"] = _ratio(
            "d766.5_4",
            name,
            base - overdue - len(s.complaints),
            base,
            f"base: the {base:g} dossiers of 766 2.1 (resolved in the period or open at its cut-off) [I]; minus "
            f"{overdue:g} overdue (766 2.1) and {len(s.complaints)} with a PAKN or a negative rating in the period",
            floor=True,
        )
    return out


def group5(
    pakn: Sequence[Pakn],
    ratings: Sequence[RatingRow],
    w: Window,
    cal: WorkingCalendar,
    d766_2_1: IndicatorValue | None,
) -> dict[str, IndicatorValue]:
    """:func:`sides` then :func:`feedback_values`."""
    return feedback_values(sides(pakn, ratings, w, cal), d766_2_1, cal.version)
