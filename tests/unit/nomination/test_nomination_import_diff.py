"""An import replaces a fiscal year's list; the diff says what that changes (and whether anything does)."""

from __future__ import annotations

from nomination.domain import Department, StaffMember, diff_import

SOUMU = Department(code="0101", name="総務課", bureau="総務部")
JINJI = Department(code="0102", name="人事課", bureau="総務部")
KIKAKU = Department(code="0201", name="企画課", bureau="企画政策部")


def by_code(*departments: Department) -> dict[str, Department]:
    return {department.code: department for department in departments}


def test_the_first_import_adds_every_row() -> None:
    diff = diff_import({}, by_code(SOUMU, JINJI))

    assert diff.added == (SOUMU, JINJI)
    assert (diff.changed, diff.unchanged, diff.removed) == ((), 0, ())
    assert diff.changes_anything


def test_re_importing_the_same_list_changes_nothing() -> None:
    diff = diff_import(by_code(SOUMU, JINJI), by_code(SOUMU, JINJI))

    assert diff.unchanged == 2
    assert not diff.changes_anything


def test_a_renamed_or_retired_department_is_changed_and_a_missing_one_removed() -> None:
    renamed = Department(code="0101", name="総務企画課", bureau="総務部")
    retired = Department(code="0102", name="人事課", bureau="総務部", active=False)

    diff = diff_import(by_code(SOUMU, JINJI, KIKAKU), by_code(renamed, retired))

    assert [change.after for change in diff.changed] == [renamed, retired]
    assert [change.changed_fields for change in diff.changed] == [("name",), ("active",)]
    assert diff.removed == ("0201",)


def test_a_staff_member_moving_department_is_a_change() -> None:
    before = StaffMember(staff_id="001001", name="青森 太郎", department_code="0101")
    moved = StaffMember(staff_id="001001", name="青森 太郎", department_code="0201")

    diff = diff_import({"001001": before}, {"001001": moved})

    [change] = diff.changed
    assert change.before == before and change.after == moved
    assert change.changed_fields == ("department_code",)
