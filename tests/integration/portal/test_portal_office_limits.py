"""A file over the services' upload limit: the nomination service's own refusal is what the office reads,
in Japanese, and nothing is held or imported; a body far beyond it is refused before it is read. The limit is made small here (DX_MAX_UPLOAD_BYTES) so the
files stay small."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.integration.portal.conftest import ARTIFACTS, OWN_DEPARTMENT, running_portal
from tests.integration.portal.test_portal_office import csrf_of, office, staff_of, upload
from tests.support.idp import Idp
from tests.support.infra import Servers
from tests.support.system import RunningSystem

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

LIMIT = 4096


@pytest.fixture(scope="module")
def small_uploads() -> Iterator[None]:
    before = os.environ.get("DX_MAX_UPLOAD_BYTES")
    os.environ["DX_MAX_UPLOAD_BYTES"] = str(LIMIT)
    try:
        yield
    finally:
        if before is None:
            del os.environ["DX_MAX_UPLOAD_BYTES"]
        else:
            os.environ["DX_MAX_UPLOAD_BYTES"] = before


@pytest.fixture(scope="module")
async def portal_system(small_uploads: None, servers: Servers, idp: Idp) -> AsyncIterator[RunningSystem]:
    async with running_portal(servers, idp, ARTIFACTS / "portal-limits-logs") as system:
        yield system


def roster_of_size(size: int) -> bytes:
    lines = ["職員番号,氏名,所属コード"]
    number = 2700000
    while len("\n".join(lines).encode()) < size:
        number += 1
        lines.append(f"{number},職員,{OWN_DEPARTMENT}")
    return "\n".join(lines).encode()[:size]


def test_a_file_just_over_the_limit_is_refused_by_the_service_in_japanese(
    idp: Idp, portal_system: RunningSystem
) -> None:
    visit = office(idp, portal_system)
    token = csrf_of(visit.get("/office/imports/staff"))
    refused = upload(visit, "staff", roster_of_size(LIMIT + 1), token)
    assert refused.status_code == 413
    assert f"本文が上限（{LIMIT}バイト）を超えています" in refused.text, "the service's own words"
    assert 'name="draft_id"' not in refused.text
    assert "2700001" not in staff_of(portal_system, OWN_DEPARTMENT)


def test_a_far_larger_file_is_refused_before_it_is_read_and_nothing_is_imported(
    idp: Idp, portal_system: RunningSystem
) -> None:
    visit = office(idp, portal_system)
    token = csrf_of(visit.get("/office/imports/staff"))
    # Past the portal's own body limit (the webhook-sized 256 KiB at the least, or the upload limit).
    refused = upload(visit, "staff", roster_of_size(LIMIT * 80), token)
    assert refused.status_code == 413
    assert "を超えています" in refused.json()["title_ja"]
    assert "2700001" not in staff_of(portal_system, OWN_DEPARTMENT)
