"""Pure rules of the scoring read models and indicators (no I/O: no database, broker, HTTP or files).

- :mod:`.activity` — events per unit and day (the pipeline check);
- :mod:`.periods` — month / quarter / year periods of a Vietnamese calendar day;
- :mod:`.dossier` — the per-dossier read model folded from the dossier events, and the counters each
  dossier contributes to (so a changed dossier can be subtracted and re-added: replace, never add twice);
- :mod:`.config` — the versioned Decision 766 configuration (indicator set, points, targets, bands);
- :mod:`.indicators` — report 06, apology compliance and Decision 766 values from the counters.
"""

from services.scoring.domain.activity import VN_TZ, ActivityKey, count_activity, local_day

__all__ = ["VN_TZ", "ActivityKey", "count_activity", "local_day"]
