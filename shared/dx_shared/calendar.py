"""The fiscal-year calendar (POLICY.md §1): 1 April to 31 March, in Japan time.

A fiscal year is `2024` in code (`FY2024` in APIs) and 令和6年度 to people (Reiwa year = FY − 2018).
FY2019 is 令和元年度 by convention (it began on 1 April 2019, still in 平成); earlier years are 平成 and
before FY1989 昭和. Which years the system accepts, and which facts are too far ahead of now, are pure
rules here; each takes `now` as a parameter so a test can move the clock.
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime, time, timedelta, timezone

JST = timezone(timedelta(hours=9), "Asia/Tokyo")
REIWA_OFFSET = 2018
HEISEI_OFFSET = 1988
SHOWA_OFFSET = 1925


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
    """`令和6年度` for 2024; the first year of an era is written 元年 (令和元年度 = 2019, 平成元年度 = 1989)."""
    if fiscal_year > REIWA_OFFSET:
        era, year = "令和", fiscal_year - REIWA_OFFSET
    elif fiscal_year > HEISEI_OFFSET:
        era, year = "平成", fiscal_year - HEISEI_OFFSET
    else:
        era, year = "昭和", fiscal_year - SHOWA_OFFSET
    return f"{era}{'元' if year == 1 else year}年度"


def fiscal_year_code(fiscal_year: int) -> str:
    return f"FY{fiscal_year}"


# Longer text is not a fiscal year however it is written; int() is never asked to read a huge number.
MAX_FISCAL_YEAR_TEXT = 16


def parse_fiscal_year(text: str | int) -> int:
    """Accepts `2024`, `FY2024`, `R6`, `令和6年度` (and `H30` / `平成30年度`); raises ValueError otherwise."""
    if isinstance(text, bool):
        raise ValueError("not a fiscal year")
    if isinstance(text, int):
        return text
    raw = unicodedata.normalize("NFKC", text[: MAX_FISCAL_YEAR_TEXT * 2]).strip().upper()
    if not raw or len(raw) > MAX_FISCAL_YEAR_TEXT:
        raise ValueError("not a fiscal year")
    if raw.startswith("FY"):
        return _digits(raw[2:])
    for latin, kanji, offset in (("R", "令和", REIWA_OFFSET), ("H", "平成", HEISEI_OFFSET)):
        if raw.startswith(latin):
            return _digits(raw[1:]) + offset
        if raw.startswith(kanji):
            inner = raw.removeprefix(kanji).removesuffix("年度").removesuffix("年")
            return (1 if inner == "元" else _digits(inner)) + offset
    return _digits(raw)


def _digits(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise ValueError("not a fiscal year")
    return int(text)


# ---- which years and moments are plausible ----------------------------------------------------


def latest_accepted_fiscal_year(now: datetime) -> int:
    """Planning runs one year ahead: the current fiscal year (in Japan) and the next one are accepted."""
    return fiscal_year_of(now) + 1


def accepted_fiscal_years(first_fiscal_year: int, now: datetime) -> range:
    """Every fiscal year a request may name: from the configured first year to next year."""
    return range(first_fiscal_year, latest_accepted_fiscal_year(now) + 1)


def occurs_in_future(moment: datetime, now: datetime, skew: timedelta) -> bool:
    """A fact that happened later than now (allowing for clocks that differ by `skew`) cannot be true."""
    return to_jst(moment) > to_jst(now) + skew


def fiscal_year_has_ended(fiscal_year: int, now: datetime) -> bool:
    """A fiscal year ends at 00:00 on 1 April after it, Japan time."""
    return to_jst(now) >= fiscal_year_end(fiscal_year)


def reiwa_date_ja(day: date) -> str:
    """`令和6年6月3日` for 2024-06-03 (a calendar date; the first Reiwa year, 2019, is written 元年)."""
    year = day.year - REIWA_OFFSET
    return f"令和{'元' if year == 1 else year}年{day.month}月{day.day}日"
