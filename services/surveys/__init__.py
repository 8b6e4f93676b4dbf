"""The surveys service: SIPAS and citizen questionnaires turned into trustworthy response events."""
