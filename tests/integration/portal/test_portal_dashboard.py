"""The portal's dashboard quotes reporting's headline figures under the labels its JSON and CSV use."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.portal.conftest import YEAR
from tests.support.idp import Idp
from tests.support.portal import sign_in, username_for
from tests.support.system import RunningSystem

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def test_the_dashboard_quotes_the_headline_figures_under_the_same_labels_as_json_and_csv(
    idp: Idp, portal_system: RunningSystem
) -> None:
    page = sign_in(idp, portal_system.url("portal"), username_for("dx_office")).get(f"/?fiscal_year={YEAR}")
    assert page.status_code == 200
    reporting = portal_system.url("reporting", "/api/v1/reports")
    plan = httpx.get(f"{reporting}/plan", headers=portal_system.headers, timeout=15).json()
    plan_csv = httpx.get(f"{reporting}/plan.csv", headers=portal_system.headers, timeout=15).content.decode("utf-8-sig")

    for key in ("new_promoters", "new_promoters_cumulative", "stage_trainees"):
        label = plan["figures"][key]["label_ja"]
        assert label in page.text and label in plan_csv
    assert "新規DX推進員（実人数）" in page.text and "ステージ別受講者数（延べ）" in page.text


def test_reporting_sends_a_browser_at_its_old_dashboard_address_to_the_portal(portal_system: RunningSystem) -> None:
    response = httpx.get(portal_system.url("reporting", "/"), headers=portal_system.headers, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"{portal_system.url('portal')}/"
