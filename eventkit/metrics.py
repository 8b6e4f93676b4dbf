"""Prometheus metrics of the plumbing, registered on a registry the service owns (none at import time)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["PlumbingMetrics"]


class PlumbingMetrics:
    """The metrics every service exposes on /metrics for its relay, consumers and projections."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.relay_published = Counter(
            "chiso_relay_published_events", "Events the relay published to Kafka", ["relay"], registry=registry
        )
        self.relay_checkpoint = Gauge(
            "chiso_relay_checkpoint_position",
            "Global position of the last relayed event",
            ["relay"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "chiso_consumer_lag",
            "Records between a consumer's stored position and the partition's high watermark",
            ["consumer", "topic", "partition"],
            registry=registry,
        )
        self.consumed = Counter(
            "chiso_consumed_records",
            "Records a consumer committed (applied, skipped or dead-lettered)",
            ["consumer", "outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "chiso_dead_letters", "Records sent to a dead-letter topic", ["consumer"], registry=registry
        )
        self.batch_seconds = Histogram(
            "chiso_batch_seconds",
            "Time to process one batch, database commit included",
            ["component"],
            registry=registry,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
