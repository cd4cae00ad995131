"""A minimal service built with the shared machinery, to test the machinery itself.

It consumes TraineeNominated and records one row in `effects` per event. `FAILURES[staff_id] = n`
makes the handler fail transiently n times for that staff id, after writing its effect; the staff id `poison` is refused
permanently; `GATE` holds S-WAIT… staff ids. Run as a process (`python -m tests.integration.shared.toy_service`) with
`DX_TOY_DIE_BEFORE_ACK=1`, it commits the first event and then dies before acknowledging it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import uvicorn
from fastapi import FastAPI

from dx_shared import contracts as c
from dx_shared.consumer import PermanentFailure, Subscription
from dx_shared.envelope import CloudEvent
from dx_shared.service import ServiceSpec, build_service
from dx_shared.settings import Settings

MIGRATIONS = Path(__file__).parent / "toy_migrations"


# staff id → how many more attempts fail transiently (in-process tests set it)
FAILURES: dict[str, int] = {}
# staff id → how many attempts met a deadlock (a staff id starting with S-DEADLOCK always does)
DEADLOCKS: dict[str, int] = {}
# While set and not yet open, the handler waits here for a staff id starting with S-WAIT (in-process tests).
GATE: asyncio.Event | None = None


class TransientTrouble(RuntimeError):
    pass


async def handle(conn: asyncpg.Connection, event: CloudEvent, payload: c.TraineeNominated) -> None:
    if payload.staff_id == "poison":
        raise PermanentFailure("staff id 'poison' can never be processed")
    if payload.staff_id.startswith("S-DEADLOCK"):
        DEADLOCKS[payload.staff_id] = DEADLOCKS.get(payload.staff_id, 0) + 1
        raise asyncpg.DeadlockDetectedError("deadlock detected")
    if GATE is not None and payload.staff_id.startswith("S-WAIT"):
        await GATE.wait()
    await conn.execute("INSERT INTO effects (event_id, staff_id) VALUES ($1, $2)", event.id, payload.staff_id)
    if FAILURES.get(payload.staff_id, 0) > 0:
        FAILURES[payload.staff_id] -= 1
        raise TransientTrouble("simulated outage after a partial effect (rolled back)")


SUBSCRIPTION = Subscription(purpose="events", events=[c.TraineeNominated], handler=handle)


class ToySettings(Settings):
    """The toy is a service like the four: it may have a database of its own (DX_TOY_DATABASE_URL)."""

    toy_database_url: str | None = None


def create_app(settings: Settings) -> FastAPI:
    toy_settings = ToySettings(**settings.model_dump())
    return build_service(ServiceSpec(name="toy", migrations=MIGRATIONS, subscriptions=[SUBSCRIPTION]), toy_settings)


def main() -> None:
    if os.environ.get("DX_TOY_DIE_BEFORE_ACK") == "1":
        from dx_shared import service

        async def die(_self: object) -> None:
            os._exit(3)

        service._AmqpMessage.ack = die  # type: ignore[method-assign]
        service._AmqpMessage.ack_through = die  # type: ignore[method-assign]  # a batch's one multi-ack
    settings = Settings()
    uvicorn.run(create_app(settings), host="127.0.0.1", port=int(os.environ["DX_TOY_PORT"]), log_level="warning")


if __name__ == "__main__":
    main()
