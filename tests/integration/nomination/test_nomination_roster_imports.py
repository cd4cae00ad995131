"""Department lists and rosters imported per fiscal year: all-or-nothing, idempotent, announced."""

from __future__ import annotations

import json

import httpx
import pytest

from dx_shared.settings import Settings
from tests.integration.nomination.conftest import DATA, FY, import_csv, import_sample_rosters, outbox_count, pool_of
from tests.support.bus import BusProbe

pytestmark = pytest.mark.integration

ROSTER_CODES = ["0101", "0102", "0201", "0301", "0401", "9901"]


async def test_a_shift_jis_department_list_and_roster_with_japanese_headers_are_imported(
    client, settings: Settings
) -> None:
    async with BusProbe(settings, ["nomination.#"]) as probe:
        departments = await import_csv(client, "departments", (DATA / "departments_2024_sjis.csv").read_bytes())
        staff = await import_csv(client, "staff", (DATA / "staff_2024_sjis.csv").read_bytes())

        [departments_event] = await probe.wait_for_type("DepartmentsImported")
        [staff_event] = await probe.wait_for_type("StaffImported")

    assert departments.status_code == 200
    assert departments.json()["encoding"] == "cp932"
    assert departments.json()["summary"] == {"added": 6, "changed": 0, "unchanged": 0, "removed": 0}
    assert departments.json()["added"] == ROSTER_CODES
    assert staff.json()["summary"] == {"added": 8, "changed": 0, "unchanged": 0, "removed": 0}
    assert staff.json()["ignored_columns"] == ["備考"]
    assert staff.json()["applied"] is True and staff.json()["event_id"] == staff_event.id
    assert departments_event.data["fiscal_year"] == FY
    assert {entry["code"] for entry in departments_event.data["departments"]} == set(ROSTER_CODES)
    assert departments_event.data["order"] == ROSTER_CODES  # the list's own (the organisation's) order
    assert staff_event.data["total"] == 8
    assert {"staff_id": "001001", "department_code": "0101", "is_manager": False} in staff_event.data["staff"]
    stored = await pool_of(client).fetchval(
        "SELECT name FROM staff WHERE fiscal_year = $1 AND staff_id = $2", FY, "001001"
    )
    assert stored == "青森　太郎"


async def test_the_staff_imported_event_carries_no_personal_names(client, settings: Settings) -> None:
    await import_csv(client, "departments", (DATA / "departments_2024_sjis.csv").read_bytes())
    async with BusProbe(settings, ["nomination.StaffImported.v1"]) as probe:
        await import_csv(client, "staff", (DATA / "staff_2024_sjis.csv").read_bytes())
        await probe.wait_for_type("StaffImported")

    body = probe.raw[0].body.decode()
    assert "青森" not in body and "name" not in json.loads(body)["data"]["staff"][0]


async def test_re_importing_the_same_files_changes_nothing_and_emits_nothing_new(client) -> None:
    await import_sample_rosters(client)

    departments_again = await import_csv(client, "departments", (DATA / "departments_2024_sjis.csv").read_bytes())
    staff_again = await import_csv(client, "staff", (DATA / "staff_2024_sjis.csv").read_bytes())

    assert departments_again.json()["summary"] == {"added": 0, "changed": 0, "unchanged": 6, "removed": 0}
    assert staff_again.json()["summary"] == {"added": 0, "changed": 0, "unchanged": 8, "removed": 0}
    assert staff_again.json()["applied"] is False and staff_again.json()["event_id"] is None
    assert await outbox_count(client, "DepartmentsImported") == 1
    assert await outbox_count(client, "StaffImported") == 1


async def test_the_same_list_in_another_encoding_is_the_same_list(client) -> None:
    await import_sample_rosters(client)
    utf8 = (DATA / "staff_2024_sjis.csv").read_bytes().decode("cp932").encode("utf-8-sig")

    again = await import_csv(client, "staff", utf8)

    assert again.json()["encoding"] == "utf-8-sig"
    assert again.json()["summary"]["unchanged"] == 8


async def test_a_changed_roster_emits_only_what_changed(client, settings: Settings) -> None:
    await import_sample_rosters(client)
    changed = (
        "職員番号,氏名,所属コード,管理職\n"
        "001001,青森　太郎,0201,0\n"  # moved department
        "001002,弘前　花子,0101,1\n"
        "001003,八戸　次郎,0102,0\n"
        "001004,十和田　三郎,0201,0\n"
        "001005,三沢　四郎,0201,1\n"
        "001006,むつ　五月,0301,0\n"
        "001007,五所川原　六美,0401,1\n"  # became a manager
        "001009,平川　九,0401,0\n"  # joined; 001008 left
    ).encode()

    async with BusProbe(settings, ["nomination.StaffImported.v1"]) as probe:
        response = await import_csv(client, "staff", changed)
        event_id = response.json()["event_id"]
        # the first import's event may still be on its way: pick this import's by id
        await probe.wait_for(lambda events: any(event.id == event_id for event in events))
        [event] = [event for event in probe.events if event.id == event_id]

    report = response.json()
    assert report["summary"] == {"added": 1, "changed": 2, "unchanged": 5, "removed": 1}
    assert report["changed"] == [
        {"key": "001001", "fields": ["department_code"]},
        {"key": "001007", "fields": ["is_manager"]},
    ]
    assert report["removed"] == ["001008"]
    assert sorted(entry["staff_id"] for entry in event.data["staff"]) == ["001001", "001007", "001009"]
    assert event.data["removed_staff_ids"] == ["001008"]
    assert event.data["total"] == 8


async def test_a_dry_run_reports_the_changes_without_writing_anything(client) -> None:
    response = await import_csv(client, "departments", (DATA / "departments_2024_sjis.csv").read_bytes(), dry_run=True)

    assert response.status_code == 200
    assert response.json()["dry_run"] is True and response.json()["applied"] is False
    assert response.json()["summary"]["added"] == 6
    assert await pool_of(client).fetchval("SELECT count(*) FROM departments") == 0
    assert await outbox_count(client, "DepartmentsImported") == 0


async def test_a_roster_with_bad_rows_records_nothing_and_names_every_bad_row(client) -> None:
    await import_csv(client, "departments", (DATA / "departments_2024_utf8_bom.csv").read_bytes())

    response = await import_csv(client, "staff", (DATA / "staff_2024_bad_rows.csv").read_bytes())

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "IMPORT_REJECTED"
    assert [(row["line"], row["code"]) for row in problem["bad_rows"]] == [
        (3, "MISSING_VALUE"),
        (4, "BAD_MANAGER_FLAG"),
        (5, "UNKNOWN_DEPARTMENT"),
        (6, "DUPLICATE_STAFF_ID"),
        (7, "BAD_STAFF_ID"),
        (8, "BAD_DEPARTMENT_CODE"),
        (9, "WRONG_COLUMN_COUNT"),
        (10, "MISSING_VALUE"),
    ]
    assert all(row["message_ja"] and row["message_en"] for row in problem["bad_rows"])
    assert await pool_of(client).fetchval("SELECT count(*) FROM staff") == 0
    assert await outbox_count(client, "StaffImported") == 0


async def test_a_department_list_with_bad_rows_records_nothing(client) -> None:
    response = await import_csv(client, "departments", (DATA / "departments_2024_bad_rows.csv").read_bytes())

    assert response.status_code == 422
    assert [row["code"] for row in response.json()["bad_rows"]] == [
        "DUPLICATE_DEPARTMENT_CODE",
        "BAD_ACTIVE_FLAG",
        "MISSING_VALUE",
        "BAD_DEPARTMENT_CODE",
    ]
    assert await pool_of(client).fetchval("SELECT count(*) FROM departments") == 0


async def test_a_roster_before_its_years_department_list_is_refused(client) -> None:
    response = await import_csv(client, "staff", (DATA / "staff_2024_sjis.csv").read_bytes())

    assert response.status_code == 422
    assert response.json()["bad_rows"][0]["code"] == "NO_DEPARTMENTS"


async def test_a_department_still_on_the_roster_cannot_be_dropped_from_the_list(client) -> None:
    await import_sample_rosters(client)

    response = await import_csv(client, "departments", (DATA / "departments_2024_utf8_bom.csv").read_bytes())

    assert response.status_code == 422
    assert response.json()["bad_rows"][0]["code"] == "DEPARTMENT_IN_USE"
    assert await pool_of(client).fetchval("SELECT count(*) FROM departments") == 6


async def test_rosters_are_kept_per_fiscal_year(client) -> None:
    await import_sample_rosters(client, fiscal_year=2024)
    await import_csv(client, "departments", (DATA / "departments_2024_sjis.csv").read_bytes(), fiscal_year=2025)
    moved = "職員番号,氏名,所属コード\n001001,青森　太郎,0401\n".encode()

    response = await import_csv(client, "staff", moved, fiscal_year=2025)

    assert response.json()["summary"]["added"] == 1
    rows = await pool_of(client).fetch("SELECT fiscal_year, department_code FROM staff WHERE staff_id = '001001'")
    assert sorted((row["fiscal_year"], row["department_code"]) for row in rows) == [(2024, "0101"), (2025, "0401")]


async def test_a_file_can_be_uploaded_as_a_multipart_form_and_the_year_written_fy(client) -> None:
    raw = (DATA / "departments_2024_sjis.csv").read_bytes()

    response = await client.post(
        "/api/v1/departments/import", params={"fiscal_year": "FY2024"}, files={"file": ("所属.csv", raw, "text/csv")}
    )

    assert response.status_code == 200, response.text
    assert response.json()["fiscal_year"] == 2024
    assert response.json()["summary"]["added"] == 6


async def test_a_fiscal_years_departments_are_listed_by_bureau_and_code(client: httpx.AsyncClient) -> None:
    await import_sample_rosters(client)
    listed = (await client.get("/api/v1/departments", params={"fiscal_year": "R6"})).json()
    assert [department["code"] for department in listed] == sorted(
        (department["code"] for department in listed),
        key=lambda code: (next(d["bureau"] for d in listed if d["code"] == code), code),
    )
    assert {department["code"] for department in listed} >= {"0101", "9901"}
    assert (await client.get("/api/v1/departments", params={"fiscal_year": 2030})).json() == []
