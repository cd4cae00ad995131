"""The fiscal-year calendar (POLICY.md §1): 1 April to 31 March, in Japan time.

A fiscal year is `2024` in code (`FY2024` in APIs) and 令和6年度 to people (Reiwa year = FY − 2018).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

JST = timezone(timedelta(hours=9), "Asia/Tokyo")
REIWA_OFFSET = 2018


class NaiveDateTimeError(ValueError):
    """A time without a UTC offset cannot be placed in a fiscal year."""


def to_jst(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise NaiveDateTimeError(f"{moment.isoformat()} has no UTC offset")
    return moment.astimezone(JST)


def fiscal_year_of(moment: datetime) -> int:
    """The fiscal year in which `moment` falls, judged by the Japan-time calendar date."""
    return fiscal_year_of_date(to_jst(moment).date())


def fiscal_year_of_date(day: date) -> int:
    return day.year if day.month >= 4 else day.year - 1


def fiscal_year_start(fiscal_year: int) -> datetime:
    return datetime.combine(date(fiscal_year, 4, 1), time(0, 0), tzinfo=JST)


def fiscal_year_end(fiscal_year: int) -> datetime:
    """The first instant *after* the fiscal year (exclusive bound)."""
    return fiscal_year_start(fiscal_year + 1)


def reiwa_year(fiscal_year: int) -> int:
    return fiscal_year - REIWA_OFFSET


def fiscal_year_label_ja(fiscal_year: int) -> str:
    """`令和6年度` for 2024; the first Reiwa year is written 元年."""
    year = reiwa_year(fiscal_year)
    return f"令和{'元' if year == 1 else year}年度"


def fiscal_year_code(fiscal_year: int) -> str:
    return f"FY{fiscal_year}"


def parse_fiscal_year(text: str | int) -> int:
    """Accepts `2024`, `FY2024`, `R6` and `令和6年度`."""
    if isinstance(text, int):
        return text
    raw = text.strip().upper()
    if raw.startswith("FY"):
        return int(raw[2:])
    if raw.startswith("R"):
        return int(raw[1:]) + REIWA_OFFSET
    if raw.startswith("令和"):
        inner = raw.removeprefix("令和").removesuffix("年度").removesuffix("年")
        return (1 if inner == "元" else int(inner)) + REIWA_OFFSET
    return int(raw)


def reiwa_date_ja(day: date) -> str:
    """`令和6年6月3日` for 2024-06-03 (a calendar date; the first Reiwa year, 2019, is written 元年)."""
    year = day.year - REIWA_OFFSET
    return f"令和{'元' if year == 1 else year}年{day.month}月{day.day}日"
