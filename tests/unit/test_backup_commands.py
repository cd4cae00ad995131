"""The pg_dump / pg_restore command lines: one schema, custom format, no password on the command line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dx_tools.backup import (
    Connection,
    default_dump_path,
    dump_command,
    restore_command,
    schemas_in_listing,
    split_password,
)


def test_the_password_leaves_the_url_and_is_kept_for_pgpassword() -> None:
    connection = split_password("postgresql://training:s%40cret@db.example:6543/dx?sslmode=require")
    assert connection == Connection("postgresql://training@db.example:6543/dx?sslmode=require", "s@cret")
    assert "s@cret" not in connection.url and "s%40cret" not in connection.url


def test_a_url_without_a_password_is_unchanged() -> None:
    url = "postgresql://postgres@127.0.0.1:5432/dx"
    assert split_password(url) == Connection(url, None)


def test_dump_is_one_schema_in_custom_format_without_owners() -> None:
    command = dump_command("pg_dump", Connection("postgresql://u@h/dx", "pw"), "training", Path("t.dump"))
    assert command[0] == "pg_dump"
    assert {"--format=custom", "--schema=training", "--no-owner", "--file=t.dump"} <= set(command)
    assert not any("pw" in part for part in command)


def test_a_schema_name_that_is_not_an_identifier_is_refused() -> None:
    with pytest.raises(ValueError):
        dump_command("pg_dump", Connection("postgresql://u@h/dx", None), "training; DROP", Path("x"))


def test_restore_is_all_or_nothing() -> None:
    command = restore_command("pg_restore", Connection("postgresql://u@h/dx", None), Path("t.dump"))
    assert {"--single-transaction", "--exit-on-error", "--no-owner"} <= set(command)
    assert command[-1] == "t.dump"


def test_the_schemas_of_a_dump_are_read_from_its_table_of_contents() -> None:
    listing = """;
; Archive created at 2026-12-02 01:01:52 UTC
;     dbname: dx
;
6; 2615 16388 SCHEMA - training postgres
216; 1259 16390 TABLE training outbox postgres
3344; 0 16390 TABLE DATA training inbox postgres
"""
    assert schemas_in_listing(listing) == {"training"}
    assert schemas_in_listing("; nothing\n") == set()


def test_the_default_file_name_says_which_service_and_when() -> None:
    assert default_dump_path("reporting", datetime(2027, 3, 31, 23, 5, tzinfo=UTC)) == Path(
        "reporting-20270331T230500Z.dump"
    )
