"""Structured JSON logs with correlation and causation ids.

Every log line is one JSON object (``timestamp``, ``level``, ``event``, ``logger`` and whatever the call
adds). The ids of the message or request being handled live in context variables, so every line written
while handling it carries them without threading them through every call.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

__all__ = ["bind_message_context", "configure_logging", "get_logger"]


def configure_logging(level: str = "INFO", *, json_output: bool = True, access: bool = True) -> None:
    """Route structlog and the standard library (uvicorn, aiokafka) to one JSON-lines stream on stdout.

    ``access``: uvicorn's line per HTTP request. uvicorn writes it when its ``uvicorn.access`` logger has a
    handler (its own or, propagated, the root's); without one it skips the line and the formatting of its
    arguments (measured: ≈ 1.5 % of a request's CPU even when the level filtered the line out).
    """
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamper,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka logs every rebalance step at INFO; keep its warnings only
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").propagate = access


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger; lines carry the context bound with :func:`bind_message_context`."""
    return structlog.stdlib.get_logger(name)


@contextmanager
def bind_message_context(
    *, correlation_id: str | None = None, causation_id: str | None = None, **extra: Any
) -> Iterator[None]:
    """Bind the ids of the message being handled to every log line written inside the block."""
    values = {k: v for k, v in {"correlation_id": correlation_id, "causation_id": causation_id}.items() if v}
    with structlog.contextvars.bound_contextvars(**values, **extra):
        yield
