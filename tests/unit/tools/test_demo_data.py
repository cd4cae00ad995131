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


def test_every_division_belongs_to_a_bureau_that_would_have_it_and_the_counts_hold() -> None:
    from dx_tools.demo_data import BUREAUS, REGIONAL_OFFICES

    divisions_of = {bureau: set(divisions) for _, bureau, divisions in BUREAUS}
    regional_bureau = {office: bureau for office, bureau in REGIONAL_OFFICES}
    first = generate(2024)[0]
    assert len(first.departments) == 198 and len({d.bureau for d in first.departments}) == 12
    for department in first.departments:
        if " " in department.name and department.name.split(" ")[0] in divisions_of:
            bureau, division = department.name.split(" ")
            assert bureau == department.bureau and division in divisions_of[bureau], department.name
        else:
            office = next(o for o in regional_bureau if department.name.endswith(o))
            assert department.bureau == regional_bureau[office], department.name
    names = {department.name for department in first.departments}
    assert {"総務部 人事課", "財務部 財政課", "財務部 税務課", "企画政策部 DX推進課"} <= names
    assert "総務部 障害福祉課" not in names and "健康医療福祉部 障害福祉課" in {
        f"{bureau} {division}" for _, bureau, divisions in BUREAUS for division in divisions
    }


def test_the_department_list_is_deterministic_from_the_seed() -> None:
    assert generate(2024)[0].departments == generate(2024)[0].departments
    assert generate(2024)[0].departments != generate(7)[0].departments


def test_the_fy2026_reorganisation_renames_the_dx_division_and_merges_a_tax_office_into_its_neighbour() -> None:
    plans = {plan.fiscal_year: plan for plan in generate(2024)}
    before = {d.name: d for d in plans[2025].departments}
    after = {d.name: d for d in plans[2026].departments}
    assert "企画政策部 DX推進課" in before and "企画政策部 デジタル戦略課" in after
    assert after["企画政策部 デジタル戦略課"].code == before["企画政策部 DX推進課"].code
    assert before["下北県税事務所"].active and not after["下北県税事務所"].active
    retired = after["下北県税事務所"].code
    assert not [person for person in plans[2026].staff if person.department_code == retired]
    assert [d for d in plans[2026].departments if not d.active] == [after["下北県税事務所"]]
