"""The one place a service asks what time it is, so a test can move the clock.

`build_service` puts a `Clock` (a function returning an aware datetime) on `app.state.clock`; endpoints
take it with `ClockDep` and pass `now` to the pure rules. Tests replace `app.state.clock`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def fixed_clock(moment: datetime) -> Clock:
    """A clock that always says `moment` (for tests and simulations)."""

    def now() -> datetime:
        return moment

    return now


async def get_clock(request: Request) -> Clock:
    clock: Clock = getattr(request.app.state, "clock", system_clock)
    return clock


ClockDep = Annotated[Clock, Depends(get_clock)]
