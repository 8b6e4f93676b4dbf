"""Local infrastructure for development and tests: a real Apache Kafka broker and PostgreSQL on 127.0.0.1.

``infra.local`` starts throw-away (or kept) PostgreSQL clusters and single-node KRaft Kafka brokers built from
Maven Central jars, because the project's machines have no Docker engine and cannot reach the Apache download
archive. ``infra.topics`` provisions topics as code, ``infra.cli`` is the ``chiso infra`` command group, and
``infra/compose.yaml`` is the equivalent stack for hosts that do have Docker. See ``infra/README.md``.
"""
