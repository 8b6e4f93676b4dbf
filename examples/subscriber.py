"""Example subscriber: a district or commune system following its units' indicators from chiso.

    python examples/subscriber.py --bootstrap localhost:9092 --unit-prefix 0000 --province 01

Reads ``vn.cchc.scoring.indicators`` (``read_committed``: chiso writes it in Kafka transactions), keeps
only the records whose ``ce_unitcode`` header starts with one of the ``--unit-prefix`` values (and/or whose
``ce_provincecode`` is ``--province``) without parsing their value, and prints one JSON line per update:
unit, period, indicator, value or N/A reason, numerator and denominator. Only needs aiokafka.

Options for tests and scripts: ``--from-beginning`` (default: only new updates), ``--group`` (commit
offsets under a consumer group), ``--max-messages N`` and ``--idle-exit SECONDS`` to stop by themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from aiokafka import AIOKafkaConsumer

TOPIC = "vn.cchc.scoring.indicators"
EVENT_TYPE = "vn.cchc.indicator.updated"


def wanted(headers: dict[str, str], prefixes: list[str], province: str | None) -> bool:
    """The filter: an ``indicator updated`` event of a unit under one of ``prefixes`` / in ``province``."""
    if headers.get("ce_type") != EVENT_TYPE:
        return False
    if province is not None and headers.get("ce_provincecode") != province:
        return False
    unit = headers.get("ce_unitcode", "")
    return not prefixes or any(unit.startswith(p) for p in prefixes)


async def follow(args: argparse.Namespace) -> int:
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        isolation_level="read_committed",
        auto_offset_reset="earliest" if args.from_beginning else "latest",
        enable_auto_commit=args.group is not None,
    )
    await consumer.start()
    printed = 0
    last_seen = time.monotonic()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch and args.idle_exit and time.monotonic() - last_seen > args.idle_exit:
                break
            for records in batch.values():
                for record in records:
                    last_seen = time.monotonic()
                    headers = {k: v.decode() for k, v in record.headers or ()}
                    if not wanted(headers, args.unit_prefix, args.province):
                        continue
                    data = json.loads(record.value)
                    line = {
                        "unit": headers["ce_unitcode"],
                        "province": headers.get("ce_provincecode"),
                        "indicator": data["indicator_key"],
                        # a reporting range is told apart by its end too (Quý I and the year may start together)
                        "period": f"{data['period_kind']}:{data['period_start']}"
                        + (f":{data['period_end']}" if data["period_kind"] == "reporting" else ""),
                        "period_end": data["period_end"],
                        "value": data["value"],
                        "na_reason": data.get("na_reason"),
                        "numerator": data.get("numerator"),
                        "denominator": data.get("denominator"),
                        "computed_at": data["computed_at"],
                    }
                    print(json.dumps(line, ensure_ascii=False), flush=True)
                    printed += 1
                    if args.max_messages and printed >= args.max_messages:
                        return printed
    finally:
        await consumer.stop()
    return printed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default="localhost:9092", help="Kafka bootstrap servers")
    parser.add_argument("--unit-prefix", action="append", default=[], help="ce_unitcode prefix (repeatable)")
    parser.add_argument("--province", default=None, help="2-digit ce_provincecode to keep")
    parser.add_argument("--group", default=None, help="Consumer group (commits offsets); default: none")
    parser.add_argument("--from-beginning", action="store_true", help="Read the retained history first")
    parser.add_argument("--max-messages", type=int, default=0, help="Stop after printing this many updates")
    parser.add_argument("--idle-exit", type=float, default=0, help="Stop after this many seconds without records")
    args = parser.parse_args(argv)
    printed = asyncio.run(follow(args))
    print(f"{printed} updates", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
