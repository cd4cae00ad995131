"""The checked-in OpenAPI and AsyncAPI documents are what the code generates (CONTRACT.md)."""

from __future__ import annotations

from dx_tools import docs


def test_the_checked_in_api_documents_match_the_code() -> None:
    out_of_date = docs.stale()
    assert out_of_date == [], f"out of date (run ./dx docs): {out_of_date}"
