"""Kafka clients configured the one way chiso uses them."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from eventkit.settings import KafkaSettings

__all__ = ["build_producer"]


def build_producer(settings: KafkaSettings, client_id: str) -> AIOKafkaProducer:
    """An idempotent producer with ``acks=all``: no duplicates from its own retries, order kept per partition.

    aiokafka keeps one in-flight batch per partition and, with idempotence on, never expires a batch, so a
    transient broker failure delays records but cannot reorder or drop them.
    """
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id_prefix}.{client_id}",
        enable_idempotence=True,
        acks="all",
        linger_ms=settings.linger_ms,
        max_batch_size=settings.max_batch_size,
        request_timeout_ms=settings.request_timeout_ms,
    )
