"""Small builders of progression facts, so a test reads as the history it describes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from dx_shared.calendar import JST
from progression.domain import (
    Completion,
    CurriculumRevision,
    Decision,
    EmittedYear,
    Fact,
    FiscalYearClosing,
    Nomination,
    PersonFacts,
    PersonStanding,
    Withdrawal,
    decide,
    reconcile,
)

STAFF = "S0001"


def at(fiscal_year: int, month: int = 6, day: int = 1, hour: int = 12) -> datetime:
    """A moment inside the fiscal year (April–March), in Japan time."""
    year = fiscal_year if month >= 4 else fiscal_year + 1
    return datetime(year, month, day, hour, tzinfo=JST)


def nominated(fiscal_year: int, nomination_id: str | None = None, slot: str = "self") -> Nomination:
    nomination_id = nomination_id or f"n-{fiscal_year}"
    return Nomination(f"ev-{nomination_id}", nomination_id, fiscal_year, slot)


def withdrawn(fiscal_year: int, nomination_id: str | None = None, when: datetime | None = None) -> Withdrawal:
    nomination_id = nomination_id or f"n-{fiscal_year}"
    return Withdrawal(f"ev-w-{nomination_id}", nomination_id, fiscal_year, when or at(fiscal_year, 9))


def curriculum(
    fiscal_year: int, stage: int, *sessions: str, revision: int = 1, published: datetime | None = None
) -> CurriculumRevision:
    """A revision; without `published` it is in force from the start of the year (until a higher one)."""
    return CurriculumRevision(
        f"ev-cur-{fiscal_year}-{stage}-{revision}", fiscal_year, stage, revision, frozenset(sessions), published
    )


def completed(
    session_id: str, fiscal_year: int, occurred: datetime | None = None, recorded: datetime | None = None
) -> Completion:
    occurred = occurred or at(fiscal_year, 7)
    return Completion(
        f"ev-c-{session_id}-{fiscal_year}-{occurred.isoformat()}", session_id, fiscal_year,
        occurred, recorded or occurred,
    )


def waived(session_id: str, fiscal_year: int, recorded: datetime | None = None) -> Completion:
    recorded = recorded or at(fiscal_year, 8)
    return Completion(f"ev-wv-{session_id}-{fiscal_year}", session_id, fiscal_year, recorded, recorded, True)


def closed(fiscal_year: int, when: datetime | None = None) -> FiscalYearClosing:
    return FiscalYearClosing(f"ev-close-{fiscal_year}", fiscal_year, when or at(fiscal_year, 3, 31, 18))


def standing_of(*facts: Fact, staff_id: str = STAFF) -> PersonStanding:
    return decide(PersonFacts.of(staff_id, facts))


def stage_one_curriculum_completed(fiscal_year: int) -> list[Fact]:
    """A stage-1 curriculum of two sessions for the year, both completed in it."""
    return [
        curriculum(fiscal_year, 1, f"s1a-{fiscal_year}", f"s1b-{fiscal_year}"),
        completed(f"s1a-{fiscal_year}", fiscal_year),
        completed(f"s1b-{fiscal_year}", fiscal_year),
    ]


def stage_curriculum_completed(fiscal_year: int, stage: int) -> list[Fact]:
    session = f"s{stage}-{fiscal_year}"
    return [curriculum(fiscal_year, stage, session), completed(session, fiscal_year)]


def announce_step_by_step(
    facts: Iterable[Fact], staff_id: str = STAFF
) -> tuple[list[Decision], Mapping[int, EmittedYear]]:
    """Feed the facts one at a time, announcing the difference after each, as the service does."""
    person = PersonFacts(staff_id)
    emitted: Mapping[int, EmittedYear] = {}
    announced: list[Decision] = []
    for fact in facts:
        person = person.with_fact(fact)
        result = reconcile(decide(person), emitted)
        announced.extend(result.decisions)
        emitted = result.emitted
    return announced, emitted
