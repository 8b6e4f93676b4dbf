"""The plans service: CCHC plans, targets, tasks, reports, inspections and PAR criterion assessments."""
