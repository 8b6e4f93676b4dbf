"""Where the simulated traffic goes: the services' real inbound interfaces, paced to a rate.

- dossier facts: the inbound topic ``vn.cchc.dossiers.inbound`` in CloudEvents binary mode
  (:func:`contracts.wire.encode`; key = ``dossier:<id>``, idempotent producer with ``acks=all``, so one
  dossier's facts stay in order on one partition), or ``POST /v1/facts`` with ``Idempotency-Key`` = the
  fact's id when no broker is named;
- survey responses: the inbound topic ``vn.cchc.surveys.inbound`` (dated in simulated time, as a partner
  survey system sends them), or ``POST /v1/responses`` with the dossier's QR/SMS link token signed with
  ``SURVEYS_TOKEN_SECRET`` (the service dates those when they arrive);
- plans and tasks: the plans HTTP API (``POST /plans``, ``/tasks``, ``/task-completions``);
- ``dry_run``: every item as one JSON line instead (what would be sent, and where).

HTTP requests go through a few workers, each owning the keys that hash to it, so the requests of one
dossier (or one commune's plan) are sent one after the other, in order, while different dossiers overlap.
A 4xx answer is counted with its reason and the run goes on; a transport failure stops it.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import IO, Any, Literal

from contracts.envelope import make_envelope
from contracts.topics import DOSSIERS_INBOUND, SURVEYS_INBOUND
from contracts.wire import encode
from services.simulator.links import sign_link
from services.simulator.traffic import DossierFact, Item, PlanCommand, SurveyResponse

__all__ = ["Summary", "Targets", "send_all"]

SurveysVia = Literal["kafka", "http", "off"]
_HTTP_WORKERS = 8


@dataclass(frozen=True)
class Targets:
    """Where each kind of traffic goes (see the module docstring)."""

    kafka: str | None = None
    dossiers_url: str | None = None
    surveys_via: SurveysVia = "kafka"
    surveys_url: str | None = None
    link_secret: bytes | None = None
    plans_url: str | None = None
    dry_run: Path | None = None
    survey_source: str = "urn:chiso:simulator:surveys"


@dataclass
class Summary:
    """What was sent: facts per type, surveys, plan commands; refusals with their reasons."""

    facts: Counter[str] = field(default_factory=Counter)
    surveys: int = 0
    plans: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        """Items sent."""
        return sum(self.facts.values()) + self.surveys + sum(self.plans.values())


class _Pacer:
    """At most ``rate`` items per second of real time (0: as fast as the targets take them)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = time.monotonic()

    async def wait(self) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        if self._next > now:
            await asyncio.sleep(self._next - now)
        self._next = max(self._next, now - 1.0) + self._interval  # a stall may catch up for one second only


class _KeyedWorkers:
    """HTTP requests of one key in order; different keys on up to ``n`` workers."""

    def __init__(self, n: int) -> None:
        self._queues: list[asyncio.Queue[Callable[[], Awaitable[None]] | None]] = [
            asyncio.Queue(maxsize=256) for _ in range(n)
        ]
        self._tasks = [asyncio.create_task(self._run(q)) for q in self._queues]

    async def _run(self, queue: asyncio.Queue[Callable[[], Awaitable[None]] | None]) -> None:
        while (job := await queue.get()) is not None:
            await job()

    async def submit(self, key: str, job: Callable[[], Awaitable[None]]) -> None:
        for task in self._tasks:
            if task.done():
                task.result()  # a failed worker stops the run with its error
        await self._queues[zlib.crc32(key.encode()) % len(self._queues)].put(job)

    async def close(self) -> None:
        for queue in self._queues:
            await queue.put(None)
        await asyncio.gather(*self._tasks)


def _dry_line(item: Item, targets: Targets) -> dict[str, Any]:
    if isinstance(item, DossierFact):
        key, value, headers = encode(item.envelope)
        return {
            "at": item.at.isoformat(),
            "to": f"kafka:{DOSSIERS_INBOUND}",
            "key": key.decode(),
            "headers": {k: v.decode() for k, v in headers},
            "value": json.loads(value),
        }
    if isinstance(item, SurveyResponse):
        return {
            "at": item.at.isoformat(),
            "to": f"kafka:{SURVEYS_INBOUND}" if targets.surveys_via == "kafka" else "http:POST /v1/responses",
            "unitcode": item.unit_code,
            "value": item.response.model_dump(mode="json"),
        }
    return {"at": item.at.isoformat(), "to": f"http:POST {item.path}", "unitcode": item.unit_code, "body": item.body}


def _reason(response: Any) -> str:
    try:
        detail = response.json().get("detail") or response.json().get("reason")
    except (ValueError, AttributeError):
        detail = response.text
    return f"{response.status_code} {json.dumps(detail, ensure_ascii=False)[:200]}"


async def send_all(  # noqa: PLR0912, PLR0915 - one dispatch loop over the three kinds and four ways out
    items: Iterable[Item],
    targets: Targets,
    *,
    rate: float,
    on_item: Callable[[Item, Summary], None] | None = None,
) -> Summary:
    """Send every item to its target at ``rate`` items per second; the summary of what happened."""
    import httpx  # noqa: PLC0415 - the CLI imports this module only when it runs

    summary = Summary()
    started = time.monotonic()
    pacer = _Pacer(rate)
    out: IO[str] | None = None
    producer: Any = None
    client: httpx.AsyncClient | None = None
    workers: _KeyedWorkers | None = None
    if targets.dry_run is not None:
        out = targets.dry_run.open("w", encoding="utf-8")
    else:
        if targets.kafka is not None:
            from eventkit.kafka import build_producer  # noqa: PLC0415
            from eventkit.settings import KafkaSettings  # noqa: PLC0415

            producer = build_producer(KafkaSettings(bootstrap_servers=targets.kafka), "simulator")
            await producer.start()
        client = httpx.AsyncClient(timeout=30.0)
        workers = _KeyedWorkers(_HTTP_WORKERS)

    async def post(url: str, body: dict[str, Any], headers: dict[str, str], on_ok: Callable[[], None]) -> None:
        assert client is not None
        response = await client.post(url, json=body, headers=headers)
        if response.status_code == 200:
            summary.duplicates += 1
            on_ok()
        elif response.status_code < 300:
            on_ok()
        else:
            summary.refused[f"POST {url.split('/', 3)[-1]}: {_reason(response)}"] += 1

    try:
        for item in items:
            await pacer.wait()
            if isinstance(item, SurveyResponse) and targets.surveys_via == "off":
                summary.skipped["surveys (off)"] += 1
                continue
            if isinstance(item, PlanCommand) and targets.plans_url is None and out is None:
                summary.skipped["plan commands (no plans URL)"] += 1
                continue
            if out is not None:
                out.write(json.dumps(_dry_line(item, targets), ensure_ascii=False) + "\n")
                _count(summary, item)
            elif isinstance(item, DossierFact):
                event_type = item.envelope.type
                if producer is not None:
                    key, value, headers = encode(item.envelope)
                    await producer.send(DOSSIERS_INBOUND, value=value, key=key, headers=headers)
                    _count(summary, item)
                else:
                    assert workers is not None
                    assert targets.dossiers_url is not None
                    body = {
                        "source": item.envelope.source,
                        "type": event_type,
                        "unitcode": item.envelope.unitcode,
                        "data": item.envelope.data.model_dump(mode="json"),
                    }
                    url = f"{targets.dossiers_url.rstrip('/')}/v1/facts"
                    ok = _counter(summary, item)
                    idempotency = {"Idempotency-Key": item.fact_id}
                    await workers.submit(item.envelope.subject, partial(post, url, body, idempotency, ok))
            elif isinstance(item, SurveyResponse):
                if targets.surveys_via == "kafka":
                    if producer is None:
                        msg = "surveys over Kafka need a broker (--kafka)"
                        raise ValueError(msg)
                    envelope = make_envelope(
                        item.response,
                        id=item.event_id,
                        source=targets.survey_source,
                        subject=item.response.response_id,
                        time=item.response.submitted_at,
                        unitcode=item.unit_code,
                        provincecode=item.province_code,
                    )
                    key, value, headers = encode(envelope)
                    await producer.send(SURVEYS_INBOUND, value=value, key=key, headers=headers)
                    _count(summary, item)
                else:
                    assert workers is not None
                    if targets.link_secret is None or targets.surveys_url is None:
                        msg = "surveys over HTTP need SURVEYS_TOKEN_SECRET (the link key) and --surveys-url"
                        raise ValueError(msg)
                    url, body = _survey_request(item, targets.surveys_url, targets.link_secret)
                    ok = _counter(summary, item)
                    idempotency = {"Idempotency-Key": str(item.event_id)}
                    await workers.submit(item.response.response_id, partial(post, url, body, idempotency, ok))
            else:
                assert workers is not None
                assert targets.plans_url is not None
                url = f"{targets.plans_url.rstrip('/')}{item.path}"
                ok = _counter(summary, item)
                plan_key = str(item.body.get("plan_id") or item.body["task_id"]).rsplit("-NV", 1)[0]
                await workers.submit(plan_key, partial(post, url, item.body, {}, ok))
            if on_item is not None:
                on_item(item, summary)
    finally:
        if workers is not None:
            await workers.close()
        if producer is not None:
            await producer.stop()  # flushes: every record acknowledged by the broker (acks=all)
        if client is not None:
            await client.aclose()
        if out is not None:
            out.close()
    summary.seconds = time.monotonic() - started
    return summary


def _count(summary: Summary, item: Item) -> None:
    if isinstance(item, DossierFact):
        summary.facts[item.envelope.type] += 1
    elif isinstance(item, SurveyResponse):
        summary.surveys += 1
    else:
        summary.plans[f"POST {item.path}"] += 1


def _counter(summary: Summary, item: Item) -> Callable[[], None]:
    return lambda: _count(summary, item)


def _survey_request(item: SurveyResponse, surveys_url: str, secret: bytes) -> tuple[str, dict[str, Any]]:
    response = item.response
    assert response.linked_dossier_id is not None
    token = sign_link(
        secret,
        dossier_id=response.linked_dossier_id,
        unit_code=item.unit_code,
        channel=response.channel.value,
        # a link lives 14 days from the result; the simulated past is long gone, so from now
        expires_at=datetime.now(item.at.tzinfo) + timedelta(days=14),
        instrument_id=response.instrument_id,
        ma_tthc=response.ma_tthc,
    )
    body: dict[str, Any] = {
        "token": token,
        "instrument_version": response.instrument_version,
        "survey_id": response.survey_id,
        "respondent": response.respondent.model_dump(mode="json", exclude_none=True),
        "answers": {a.item_id: a.model_dump(mode="json")["value"] for a in response.answers},
    }
    if response.policy_group is not None:
        body["policy_group"] = response.policy_group
    return f"{surveys_url.rstrip('/')}/v1/responses", body
