"""Refusing facts that cannot be true, as problem+json: a year outside the plan, a time in the future.

The rules themselves are pure functions in `dx_shared.calendar`; this module turns their verdicts into
the refusals every service answers with (422, a rule `code`, Japanese and English titles).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Query, Request

from dx_shared.calendar import (
    accepted_fiscal_years,
    fiscal_year_label_ja,
    occurs_in_future,
    parse_fiscal_year,
)
from dx_shared.clock import Clock, system_clock
from dx_shared.problems import ProblemError, clip
from dx_shared.settings import Settings


def invalid_fiscal_year(value: object) -> ProblemError:
    return ProblemError(
        status=422,
        code="INVALID_FISCAL_YEAR",
        title_en="Not a fiscal year",
        title_ja="年度の指定が正しくありません",
        detail=f"{clip(str(value), 40)!r}: write 2024, FY2024, R6 or 令和6年度",
    )


def fiscal_year_out_of_range(fiscal_year: int, accepted: range) -> ProblemError:
    first, last = accepted.start, accepted.stop - 1
    return ProblemError(
        status=422,
        code="FISCAL_YEAR_OUT_OF_RANGE",
        title_en=f"Fiscal years from FY{first} to FY{last} are accepted",
        title_ja=f"{fiscal_year_label_ja(first)}から{fiscal_year_label_ja(last)}までの年度を指定してください",
        detail=f"FY{fiscal_year} is outside FY{first}-FY{last}",
        fiscal_year=fiscal_year,
        first_fiscal_year=first,
        last_fiscal_year=last,
    )


def checked_fiscal_year(fiscal_year: int, settings: Settings, now: datetime) -> int:
    """The year itself when it lies in the accepted range, else 422 FISCAL_YEAR_OUT_OF_RANGE."""
    accepted = accepted_fiscal_years(settings.first_fiscal_year, now)
    if fiscal_year not in accepted:
        raise fiscal_year_out_of_range(fiscal_year, accepted)
    return fiscal_year


def accepted_fiscal_year(value: int | str, settings: Settings, now: datetime) -> int:
    """Parses `2024`, `FY2024`, `R6`, `令和6年度` and checks the range; 422 otherwise."""
    try:
        fiscal_year = parse_fiscal_year(value)
    except (ValueError, TypeError) as exc:
        raise invalid_fiscal_year(value) from exc
    return checked_fiscal_year(fiscal_year, settings, now)


def skew_of(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.clock_skew_seconds)


def occurred_in_future(occurred_at: datetime, now: datetime) -> ProblemError:
    return ProblemError(
        status=422,
        code="OCCURRED_IN_FUTURE",
        title_en="The time it happened is in the future; nothing was recorded",
        title_ja="実施日時が未来の日時のため、記録していません",
        detail=f"occurred_at {occurred_at.isoformat()} is later than now ({now.isoformat()})",
    )


def refuse_future(occurred_at: datetime, settings: Settings, now: datetime) -> None:
    if occurs_in_future(occurred_at, now, skew_of(settings)):
        raise occurred_in_future(occurred_at, now)


async def fiscal_year_query(
    request: Request,
    fiscal_year: Annotated[
        str | None,
        Query(max_length=16, description="2024, FY2024, R6 or 令和6年度; defaults to the current fiscal year"),
    ] = None,
) -> int | None:
    """The `fiscal_year` query parameter, parsed and checked against the accepted range (None if absent)."""
    if fiscal_year is None or fiscal_year == "":
        return None
    clock: Clock = getattr(request.app.state, "clock", system_clock)
    settings: Settings = request.app.state.settings
    return accepted_fiscal_year(fiscal_year, settings, clock())


FiscalYearQueryDep = Annotated[int | None, Depends(fiscal_year_query)]
