"""The dossier domain: pure decide/evolve over the one-stop-shop lifecycle, with versioned rules."""

from services.dossiers.domain.feedback import decide_feedback
from services.dossiers.domain.lifecycle import (
    DERIVED,
    CheckOverdue,
    Judge,
    decide,
    decide_and_evolve,
    fact_time,
    local_day,
    overdue_watch,
)
from services.dossiers.domain.rules import RulesBook, Ruleset, SupplementPolicy
from services.dossiers.domain.state import DossierState, evolve

__all__ = [
    "DERIVED",
    "CheckOverdue",
    "DossierState",
    "Judge",
    "RulesBook",
    "Ruleset",
    "SupplementPolicy",
    "decide",
    "decide_and_evolve",
    "decide_feedback",
    "evolve",
    "fact_time",
    "local_day",
    "overdue_watch",
]
