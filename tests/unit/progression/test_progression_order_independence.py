"""P8: the outcome depends only on the set of facts, never on their order or how often they arrived.

Histories of several people over FY2024–FY2028 are generated (nominations, withdrawals, curricula with
revisions, completions with their occurred/recorded times, waivers, closings). The facts are fed one by
one through `decide` + `reconcile`, as the service does (recomputing only the people a fact concerns),
first in the generated order and then shuffled with random duplicates; both runs must end with the same
standing and the same announced decisions, and never announce the same event id twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dx_shared.calendar import fiscal_year_start
from progression.domain import (
    Completion,
    CurriculumRevision,
    EmittedYear,
    Fact,
    FiscalYearClosing,
    Nomination,
    PersonFacts,
    PersonStanding,
    Withdrawal,
    decide,
    expected_decisions,
    live_decisions,
    reconcile,
)

FISCAL_YEARS = range(2024, 2029)
PEOPLE = ("S01", "S02", "S03")
SESSIONS_PER_YEAR = 2

Stream = Sequence[tuple[str | None, Fact]]


def _moment(fiscal_year: int, day: int) -> datetime:
    return fiscal_year_start(fiscal_year) + timedelta(days=day)


def _session(fiscal_year: int, index: int) -> str:
    return f"{fiscal_year}-s{index}"


@st.composite
def curricula(draw: st.DrawFn) -> list[CurriculumRevision]:
    """Stage curricula of some years, some of them revised (a second revision) during the year."""
    revisions = []
    stages = st.sampled_from((1, 1, 1, 2, 2, 3, 4, 5))  # most trainees are in their first stages
    keys = draw(st.sets(st.tuples(st.sampled_from(FISCAL_YEARS), stages), min_size=2, max_size=12))
    for fiscal_year, stage in sorted(keys):
        for revision in range(1, draw(st.integers(1, 2)) + 1):  # a second revision: changed during the year
            sessions = draw(st.frozensets(st.integers(0, SESSIONS_PER_YEAR - 1), min_size=1, max_size=2))
            revisions.append(
                CurriculumRevision(
                    f"cur-{fiscal_year}-{stage}-{revision}", fiscal_year, stage, revision,
                    frozenset(_session(fiscal_year, i) for i in sessions),
                    published_at=_moment(fiscal_year, draw(st.integers(0, 300))),
                )
            )
    return revisions


@st.composite
def closings(draw: st.DrawFn) -> list[FiscalYearClosing]:
    closed_years = draw(st.sets(st.sampled_from(FISCAL_YEARS)))
    return [
        FiscalYearClosing(f"close-{fy}", fy, _moment(fy, draw(st.integers(340, 400))))
        for fy in sorted(closed_years)
    ]


@st.composite
def person_history(draw: st.DrawFn, staff_id: str) -> list[Fact]:
    facts: list[Fact] = []
    enrolled = draw(st.sets(st.sampled_from(FISCAL_YEARS), max_size=4))
    for fiscal_year in enrolled:
        for index in range(draw(st.integers(1, 2))):
            nomination_id = f"{staff_id}-n{fiscal_year}-{index}"
            facts.append(Nomination(f"ev-{nomination_id}", nomination_id, fiscal_year, "self"))
            if draw(st.booleans()) and draw(st.booleans()):
                withdrawn_at = _moment(fiscal_year, draw(st.integers(0, 400)))
                facts.append(Withdrawal(f"ev-w-{nomination_id}", nomination_id, fiscal_year, withdrawn_at))
    # Completions mostly fall in the years the person is nominated for, where they decide something.
    likely_years = sorted(enrolled) or list(FISCAL_YEARS)
    for index in range(draw(st.integers(0, 10))):
        fiscal_year = draw(st.sampled_from(likely_years) if draw(st.integers(0, 4)) else st.sampled_from(FISCAL_YEARS))
        session = _session(fiscal_year, draw(st.integers(0, SESSIONS_PER_YEAR - 1)))
        occurred = draw(st.integers(0, 364))
        recorded = _moment(fiscal_year, occurred + draw(st.integers(0, 60)))
        waived = draw(st.integers(0, 4)) == 0
        event_id = f"ev-{staff_id}-{'waiver' if waived else 'completion'}-{index}"
        facts.append(
            Completion(event_id, session, fiscal_year, _moment(fiscal_year, occurred), recorded, waived)
        )
    return facts


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str | None, Fact]]:
    shared: list[tuple[str | None, Fact]] = [(None, f) for f in draw(curricula()) + draw(closings())]
    people = PEOPLE[: draw(st.integers(1, len(PEOPLE)))]
    personal = [(staff, fact) for staff in people for fact in draw(person_history(staff))]
    return personal + shared


@dataclass
class Service:
    """The progression service reduced to its rules: facts in, announcements out."""

    people: dict[str, PersonFacts] = field(default_factory=dict)
    shared: set[Fact] = field(default_factory=set)
    emitted: dict[str, Mapping[int, EmittedYear]] = field(default_factory=dict)
    announced_ids: list[str] = field(default_factory=list)

    def receive(self, staff_id: str | None, fact: Fact) -> None:
        if staff_id is None:
            self.shared.add(fact)
            assert isinstance(fact, CurriculumRevision | FiscalYearClosing)
            concerned = [p for p, facts in self.people.items() if _nominated_in(facts, fact.fiscal_year)]
        else:
            person = self.people.get(staff_id, PersonFacts(staff_id))
            self.people[staff_id] = person.with_fact(fact)
            concerned = [staff_id]
        for person_id in sorted(concerned):
            self._recompute(person_id)

    def standing(self, staff_id: str) -> PersonStanding:
        return decide(
            replace(
                self.people[staff_id],
                curricula=frozenset(f for f in self.shared if isinstance(f, CurriculumRevision)),
                closings=frozenset(f for f in self.shared if isinstance(f, FiscalYearClosing)),
            )
        )

    def _recompute(self, staff_id: str) -> None:
        result = reconcile(self.standing(staff_id), self.emitted.get(staff_id, {}))
        self.announced_ids.extend(d.event_id for d in result.decisions)
        self.emitted[staff_id] = result.emitted


def _nominated_in(facts: PersonFacts, fiscal_year: int) -> bool:
    return any(n.fiscal_year == fiscal_year for n in facts.nominations)


def _run(stream: Stream) -> Service:
    service = Service()
    for staff_id, fact in stream:
        service.receive(staff_id, fact)
    return service


@given(history=histories(), data=st.data())
@settings(max_examples=300, deadline=None)
def test_any_order_with_duplicates_ends_in_the_same_standing_and_the_same_decisions(
    history: list[tuple[str | None, Fact]], data: st.DataObject
) -> None:
    shuffled = list(data.draw(st.permutations(history), label="order"))
    for index in data.draw(st.lists(st.integers(0, max(len(history) - 1, 0)), max_size=6), label="dups"):
        if history:
            position = data.draw(st.integers(0, len(shuffled)), label="at")
            shuffled.insert(position, history[index])

    in_order, any_order = _run(history), _run(shuffled)

    assert in_order.people.keys() == any_order.people.keys()
    for staff_id in in_order.people:
        final = in_order.standing(staff_id)
        assert any_order.standing(staff_id) == final
        announced_in_order = live_decisions(in_order.emitted.get(staff_id, {}))
        assert live_decisions(any_order.emitted.get(staff_id, {})) == announced_in_order
        assert announced_in_order == expected_decisions(final)
    for run in (in_order, any_order):
        assert len(run.announced_ids) == len(set(run.announced_ids)), "an event id was announced twice"
