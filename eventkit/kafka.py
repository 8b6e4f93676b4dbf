"""Kafka clients configured the one way chiso uses them."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from eventkit.settings import KafkaSettings

__all__ = ["build_producer"]


def build_producer(settings: KafkaSettings, client_id: str, *, transactional_id: str | None = None) -> AIOKafkaProducer:
    """An idempotent producer with ``acks=all``: no duplicates from its own retries, order kept per partition.

    aiokafka keeps one in-flight batch per partition and, with idempotence on, never expires a batch, so a
    transient broker failure delays records but cannot reorder or drop them. With ``transactional_id``
    the producer writes in Kafka transactions (and starting it fences an older instance with the same id).
    """
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id_prefix}.{client_id}",
        enable_idempotence=True,
        acks="all",
        linger_ms=settings.linger_ms,
        max_batch_size=settings.max_batch_size,
        request_timeout_ms=settings.request_timeout_ms,
        transactional_id=transactional_id,
        # an open transaction holds back read_committed consumers of its partitions: keep it short-lived
        transaction_timeout_ms=30_000,
    )
