"""The state's views written for speed (``end_time``, ``pending_supplement``) equal their plain definitions."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.dossiers import DossierStatus, SupplementStage
from eventkit.worktime import VN_TZ
from services.dossiers.domain.state import DossierState, Supplement

_T = datetime(2026, 3, 2, 8, 0, tzinfo=VN_TZ)


def reference_end_time(state: DossierState) -> tuple[datetime, DossierStatus] | None:
    """The definition as first written: status 9, else 10, else 8, else 7, received dossiers only."""
    for at, status in (
        (state.finished_at, DossierStatus.PROCESSED),
        (state.delivered_at, DossierStatus.RESULT_DELIVERED),
        (state.stopped_at, DossierStatus.STOPPED),
        (state.withdrawn_at, DossierStatus.WITHDRAWN),
    ):
        if at is not None and state.is_received:
            return at, status
    return None


def reference_pending(state: DossierState) -> Supplement | None:
    return next((s for s in reversed(state.supplements) if s.received_at is None), None)


_times = st.one_of(st.none(), st.integers(-3, 30).map(lambda h: _T + timedelta(hours=h)))
_supplements = st.lists(
    st.builds(
        Supplement,
        supplement_id=st.sampled_from(["a", "b", "c"]),
        stage=st.sampled_from(list(SupplementStage)),
        requested_at=st.just(_T),
        received_at=_times,
    ),
    max_size=4,
).map(tuple)


@settings(max_examples=2000, deadline=None)
@given(
    received=_times,
    finished=_times,
    delivered=_times,
    stopped=_times,
    withdrawn=_times,
    supplements=_supplements,
)
def test_the_views_equal_their_definitions(
    received: datetime | None,
    finished: datetime | None,
    delivered: datetime | None,
    stopped: datetime | None,
    withdrawn: datetime | None,
    supplements: tuple[Supplement, ...],
) -> None:
    state = DossierState(
        received_at=received,
        finished_at=finished,
        delivered_at=delivered,
        stopped_at=stopped,
        withdrawn_at=withdrawn,
        supplements=supplements,
    )
    assert state.end_time == reference_end_time(state)
    assert state.pending_supplement is reference_pending(state)
