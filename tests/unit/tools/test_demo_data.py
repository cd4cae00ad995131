"""The demo sends only what a real office could have recorded by now (issue 10: no facts from the future)."""

from __future__ import annotations

from datetime import UTC, datetime

from dx_shared.calendar import fiscal_year_of
from dx_tools.demo_data import clip_to, generate

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def test_the_demo_holds_no_fiscal_year_that_has_not_begun_and_no_fact_dated_after_now() -> None:
    plans = clip_to(generate(2024), NOW)
    assert [plan.fiscal_year for plan in plans] == [2024, 2025, 2026]
    for plan in plans:
        starts = {session.session_id: session.starts_at for session in plan.sessions}
        for completion in plan.promoter_completions + plan.baseline_completions + plan.late_for_previous_year:
            assert completion.occurred_at <= NOW
            assert completion.session_id not in starts or starts[completion.session_id] <= NOW
            assert fiscal_year_of(completion.occurred_at) <= 2026
    current = plans[-1]
    assert current.promoter_completions, "the current year so far has completions"
    assert current.nominations and current.sessions, "the current year is planned in full"


def test_the_clipped_demo_is_deterministic_and_moves_with_the_clock() -> None:
    assert clip_to(generate(2024), NOW) == clip_to(generate(2024), NOW)
    earlier = clip_to(generate(2024), datetime(2025, 6, 1, tzinfo=UTC))
    assert [plan.fiscal_year for plan in earlier] == [2024, 2025]
    assert sum(len(p.promoter_completions) for p in earlier) < sum(
        len(p.promoter_completions) for p in clip_to(generate(2024), NOW)
    )
