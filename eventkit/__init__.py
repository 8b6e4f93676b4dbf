"""chiso's event plumbing, written once and used by every service.

- :mod:`eventkit.store` — the event store protocol; :mod:`eventkit.memory` and :mod:`eventkit.postgres`
  implement it (the same contract tests run against both, see :mod:`eventkit.testing`);
- :mod:`eventkit.relay` — publishes stored events to Kafka without ever skipping or reordering one;
- :mod:`eventkit.projection` — batches from Kafka into PostgreSQL read models, exactly-once effects;
- :mod:`eventkit.deadletter` — where records that cannot be processed go, and how they come back;
- :mod:`eventkit.logging`, :mod:`eventkit.settings`, :mod:`eventkit.ops` — JSON logs, configuration,
  /health, /ready and /metrics.
"""
