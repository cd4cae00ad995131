"""Operators' command for dead-letter queues: inspect, re-drive to the original queue, or discard.

    python -m dx_tools.dead_letters list --queue reporting.events
    python -m dx_tools.dead_letters redrive --queue reporting.events (--id EVENT_ID | --all)
    python -m dx_tools.dead_letters discard --queue reporting.events (--id EVENT_ID | --all)

`--queue` names the consumer queue (`<service>.<purpose>`; its DLQ is `<queue>.dlq`; `DX_QUEUE_PREFIX`
is added when set). `list` shows per message the event id, type, original routing key, the reason
(`x-dx-dead-letter-reason`, else the broker's `x-death` reason) and its age — never the payload's data.
`redrive` publishes the message unchanged (body, id, persistence) to the original queue through the
default exchange, waits for the broker's confirm, and only then acks it from the DLQ, so a failure
loses nothing. It needs a broker user that may read the DLQ and write to the default exchange
(`DX_AMQP_URL`). Every redrive and discard is recorded in the log with the operator's user name.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from dx_shared.bus import DEAD_LETTER_REASON_HEADER, dead_letter_queue_name
from dx_shared.logging import configure_logging, get_logger
from dx_shared.settings import Settings, get_settings

log = get_logger("dx_tools.dead_letters")

# Validation messages may quote the input; a listing must not show personal data.
_QUOTED_INPUT = re.compile(r"input_value=.*?(?=, input_type=|\]|$)")
_DROPPED_ON_REDRIVE = ("x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
                       "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason", "x-delivery-count")


@dataclass(frozen=True)
class DeadLetter:
    event_id: str
    event_type: str
    routing_key: str
    reason: str
    dead_lettered_at: datetime | None
    original_queue: str

    def age_seconds(self, now: datetime) -> float | None:
        return (now - self.dead_lettered_at).total_seconds() if self.dead_lettered_at else None


def _first_death(headers: dict[str, Any]) -> dict[str, Any]:
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        return deaths[0]
    return {}


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def describe(message: AbstractIncomingMessage, dead_letter_queue: str) -> DeadLetter:
    """What an operator may see of a dead letter: ids, names, reason and time, no payload data."""
    headers = dict(message.headers or {})
    death = _first_death(headers)
    try:
        event_type = str(json.loads(message.body).get("type", "?"))
    except (ValueError, AttributeError):
        event_type = "(not a CloudEvent)"
    routing_keys = death.get("routing-keys") or []
    routing_key = _text(
        headers.get("x-dx-original-routing-key") or (routing_keys[0] if routing_keys else message.routing_key or "")
    )
    reason = _text(headers.get(DEAD_LETTER_REASON_HEADER) or death.get("reason") or "?")
    at = headers.get("x-dx-dead-lettered-at") or death.get("time")
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    if isinstance(at, datetime) and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    original = _text(
        headers.get("x-dx-original-queue") or death.get("queue") or dead_letter_queue.removesuffix(".dlq")
    )
    return DeadLetter(
        event_id=message.message_id or "?",
        event_type=event_type,
        routing_key=routing_key,
        reason=_QUOTED_INPUT.sub("input_value=…", reason)[:300],
        dead_lettered_at=at if isinstance(at, datetime) else None,
        original_queue=original,
    )


def dead_letter_queue_of(settings: Settings, queue: str) -> str:
    name = queue if queue.startswith(settings.queue_prefix) else settings.queue_prefix + queue
    return name if name.endswith(".dlq") else dead_letter_queue_name(name)


async def _take_all(channel: aio_pika.abc.AbstractChannel, name: str) -> list[AbstractIncomingMessage]:
    """Every message now in the queue, held unacked on this channel (returned when it closes)."""
    queue = await channel.declare_queue(name, passive=True)
    count = queue.declaration_result.message_count or 0
    taken: list[AbstractIncomingMessage] = []
    while len(taken) < count:
        message = await queue.get(no_ack=False, fail=False)
        if message is None:
            break
        taken.append(message)
    return taken


async def inspect(settings: Settings, queue: str) -> list[DeadLetter]:
    name = dead_letter_queue_of(settings, queue)
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        taken = await _take_all(channel, name)
        letters = [describe(message, name) for message in taken]
        for message in taken:
            await message.nack(requeue=True)
    return letters


async def redrive(settings: Settings, queue: str, event_id: str | None) -> list[str]:
    """Publishes the chosen dead letters to their original queue (confirmed), then acks them from the DLQ."""
    name = dead_letter_queue_of(settings, queue)
    done: list[str] = []
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        reading = await connection.channel()
        publishing = await connection.channel(publisher_confirms=True, on_return_raises=True)
        for message in await _take_all(reading, name):
            letter = describe(message, name)
            if event_id is not None and letter.event_id != event_id:
                await message.nack(requeue=True)
                continue
            headers = {key: value for key, value in (message.headers or {}).items() if key not in _DROPPED_ON_REDRIVE}
            headers.pop(DEAD_LETTER_REASON_HEADER, None)
            headers["x-dx-redriven-at"] = datetime.now(UTC).isoformat()
            headers["x-dx-original-routing-key"] = letter.routing_key
            await publishing.default_exchange.publish(
                aio_pika.Message(
                    message.body,
                    headers=headers,
                    content_type=message.content_type,
                    message_id=message.message_id,
                    correlation_id=message.correlation_id,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=letter.original_queue,
                mandatory=True,
            )
            await message.ack()
            done.append(letter.event_id)
            log.warning(
                "dead_letter_redriven",
                queue=name,
                to_queue=letter.original_queue,
                event_id=letter.event_id,
                event_type=letter.event_type,
                operator=getpass.getuser(),
            )
    return done


async def discard(settings: Settings, queue: str, event_id: str | None) -> list[str]:
    name = dead_letter_queue_of(settings, queue)
    done: list[str] = []
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        for message in await _take_all(channel, name):
            letter = describe(message, name)
            if event_id is not None and letter.event_id != event_id:
                await message.nack(requeue=True)
                continue
            await message.ack()
            done.append(letter.event_id)
            log.warning(
                "dead_letter_discarded",
                queue=name,
                event_id=letter.event_id,
                event_type=letter.event_type,
                reason=letter.reason[:200],
                operator=getpass.getuser(),
            )
    return done


async def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "list":
        now = datetime.now(UTC)
        letters = await inspect(settings, args.queue)
        print(f"{dead_letter_queue_of(settings, args.queue)}: {len(letters)} dead letter(s)")
        for letter in letters:
            age = letter.age_seconds(now)
            print(
                f"  {letter.event_id}  {letter.event_type}  {letter.routing_key}"
                f"  age={'?' if age is None else f'{age:.0f}s'}  reason={letter.reason}"
            )
        return 0
    if not args.all and not args.id:
        print("give --id EVENT_ID or --all", file=sys.stderr)
        return 2
    chosen = None if args.all else args.id
    done = await (redrive if args.command == "redrive" else discard)(settings, args.queue, chosen)
    print(f"{args.command}: {len(done)} message(s) {' '.join(done)}")
    return 0 if done or args.all else 1


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="python -m dx_tools.dead_letters", description=__doc__.splitlines()[0])
    sub = parse.add_subparsers(dest="command", required=True)
    for command, help_text in (
        ("list", "what is in the queue's dead-letter queue, and why"),
        ("redrive", "send dead letters back to their original queue"),
        ("discard", "delete dead letters for good"),
    ):
        each = sub.add_parser(command, help=help_text)
        each.add_argument("--queue", required=True, help="the consumer queue, e.g. reporting.events")
        if command != "list":
            which = each.add_mutually_exclusive_group()
            which.add_argument("--id", help="the event id (message id) of one dead letter")
            which.add_argument("--all", action="store_true", help="every dead letter of the queue")
    return parse


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    args = parser().parse_args(argv)
    settings = settings or get_settings()
    configure_logging("dx-tools", settings.log_level, settings.log_json)
    return asyncio.run(run(args, settings))


if __name__ == "__main__":
    sys.exit(main())
