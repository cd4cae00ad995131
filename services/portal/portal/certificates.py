"""修了証: a PDF certificate for a stage progression says the signed-in trainee completed, and the public
page anyone can open to check one.

The certificate number is `<staff id>-<fiscal year>-<stage>-<HMAC-SHA256 tag>`: deterministic (the same
certificate always has the same number) and signed with DX_PORTAL_CERTIFICATE_KEY, so it cannot be made up.
/verify checks the tag, then asks progression (with the portal's own client-credentials token) whether the
stage is still completed; it shows no name."""

from __future__ import annotations

import hashlib
import hmac
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from dx_shared.calendar import JST, fiscal_year_label_ja, reiwa_date_ja
from dx_shared.logging import get_logger
from dx_shared.roles import Scope
from portal.services_api import ServiceUnavailable
from portal.web import PageRefused, Person, page, portal_of

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)

ISSUER_JA = "青森県 DX推進担当部門"
FONT = "HeiseiMin-W3"
TAG_LENGTH = 20
NUMBER_PATTERN = re.compile(r"^(?P<staff>[0-9A-Za-z]{1,32})-(?P<year>[0-9]{4})-(?P<stage>[1-5])-(?P<tag>[0-9A-F]+)$")


# ---- the certificate number (pure) -------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateId:
    staff_id: str
    fiscal_year: int
    stage: int


def _tag(key: str, certificate: CertificateId) -> str:
    message = f"dx-talent certificate|{certificate.staff_id}|{certificate.fiscal_year}|{certificate.stage}"
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()[:TAG_LENGTH].upper()


def certificate_number(key: str, certificate: CertificateId) -> str:
    return f"{certificate.staff_id}-{certificate.fiscal_year}-{certificate.stage}-{_tag(key, certificate)}"


def verified_number(key: str, number: str) -> CertificateId | None:
    """The certificate a number names, or None when it is malformed or its tag does not match."""
    found = NUMBER_PATTERN.match(number.strip())
    if not found:
        return None
    certificate = CertificateId(found["staff"], int(found["year"]), int(found["stage"]))
    return certificate if hmac.compare_digest(_tag(key, certificate), found["tag"]) else None


def completed_stage(standing: dict[str, Any] | None, fiscal_year: int, stage: int) -> dict[str, Any] | None:
    """Progression's year in which `stage` was completed in `fiscal_year`, or None."""
    for year in (standing or {}).get("years", []):
        completion = year.get("completion")
        if year.get("fiscal_year") == fiscal_year and year.get("completed") and completion \
                and completion.get("stage") == stage:
            return dict(year)
    return None


def completed_years(standing: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [year for year in (standing or {}).get("years", []) if year.get("completed") and year.get("completion")]


# ---- the PDF ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateText:
    staff_id: str
    stage: int
    stage_name_ja: str
    fiscal_year_label: str
    completed_on: date
    number: str
    verify_url: str


def certificate_pdf(text: CertificateText) -> bytes:
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    output = io.BytesIO()
    sheet = canvas.Canvas(output, pagesize=A4, pageCompression=1)
    sheet.setTitle(f"修了証 {text.number}")
    sheet.setAuthor(ISSUER_JA)
    width, height = A4
    sheet.setLineWidth(2)
    sheet.rect(15 * mm, 15 * mm, width - 30 * mm, height - 30 * mm)
    sheet.setLineWidth(0.6)
    sheet.rect(18 * mm, 18 * mm, width - 36 * mm, height - 36 * mm)

    sheet.setFont(FONT, 40)
    sheet.drawCentredString(width / 2, height - 65 * mm, "修　了　証")
    sheet.setFont(FONT, 14)
    sheet.drawCentredString(width / 2, height - 90 * mm, f"職員番号　{text.staff_id}")

    sheet.setFont(FONT, 13)
    lines = [
        "あなたは青森県デジタル人財育成計画に基づくDX推進員の研修において",
        f"{text.fiscal_year_label}、{text.stage_name_ja}の",
        "必修研修をすべて修了したことを証します。",
    ]
    y = height - 120 * mm
    for line in lines:
        sheet.drawCentredString(width / 2, y, line)
        y -= 10 * mm

    sheet.setFont(FONT, 14)
    sheet.drawCentredString(width / 2, height - 170 * mm, f"修了日　{reiwa_date_ja(text.completed_on)}")
    sheet.setFont(FONT, 18)
    sheet.drawCentredString(width / 2, height - 200 * mm, ISSUER_JA)

    sheet.setFont(FONT, 9)
    sheet.drawString(25 * mm, 40 * mm, f"証明書番号　{text.number}")
    sheet.drawString(25 * mm, 34 * mm, "真正性の確認（どなたでも確認できます）:")
    sheet.setFont("Helvetica", 8)
    sheet.drawString(25 * mm, 29 * mm, text.verify_url)
    sheet.linkURL(text.verify_url, (25 * mm, 27 * mm, width - 25 * mm, 32 * mm), relative=0)
    sheet.showPage()
    sheet.save()
    return output.getvalue()


# ---- routes ---------------------------------------------------------------------------------------------


def _not_completed() -> PageRefused:
    return PageRefused(404, "CERTIFICATE_NOT_AVAILABLE",
                       "この年度・ステージの修了は記録されていないため、修了証は発行できません。",
                       "No completion of this stage in this fiscal year is recorded; no certificate is issued.")


def verify_url(portal_url: str, number: str) -> str:
    return f"{portal_url.rstrip('/')}/verify/{quote(number, safe='')}"


@router.get("/me/certificates/{fiscal_year}/{stage}.pdf")
async def my_certificate(request: Request, person: Person, fiscal_year: int, stage: int) -> Response:
    staff_id = person.caller.staff_id
    if staff_id is None:
        raise PageRefused(403, "ROLE_NOT_PERMITTED", "修了証は研修受講者本人だけが受け取れます。",
                          "Only the trainee may download their certificate.")
    portal = portal_of(request)
    standing = await portal.services.get_or_none("progression", f"/api/v1/trainees/{staff_id}", person.token)
    year = completed_stage(standing, fiscal_year, stage)
    if year is None:
        raise _not_completed()
    settings = portal.settings
    number = certificate_number(settings.portal_certificate_key, CertificateId(staff_id, fiscal_year, stage))
    completed_at = datetime.fromisoformat(year["completion"]["completed_at"]).astimezone(JST).date()
    body = certificate_pdf(CertificateText(
        staff_id=staff_id, stage=stage, stage_name_ja=(year.get("stage_name") or {}).get("ja") or f"ステージ{stage}",
        fiscal_year_label=fiscal_year_label_ja(fiscal_year), completed_on=completed_at, number=number,
        verify_url=verify_url(settings.portal_url, number),
    ))
    log.info("portal_certificate_issued", fiscal_year=fiscal_year, stage=stage)
    filename = quote(f"修了証_{fiscal_year_label_ja(fiscal_year)}_ステージ{stage}.pdf", safe="")
    return Response(body, media_type="application/pdf", headers={
        "Content-Disposition": f"attachment; filename=\"certificate-FY{fiscal_year}-stage{stage}.pdf\"; "
                               f"filename*=UTF-8''{filename}",
        "Cache-Control": "no-store",
    })


async def _verifier_token(request: Request) -> str:
    """The portal's own token (client-credentials grant, client with role info_policy and scope
    dx.progress.read), as the office CLI gets its own in dx_shared.client_credentials."""
    settings = portal_of(request).settings
    async with httpx.AsyncClient(timeout=settings.oidc_fetch_timeout_seconds) as http:
        try:
            discovery = await http.get(settings.oidc_discovery)
            discovery.raise_for_status()
            answer = await http.post(
                discovery.json()["token_endpoint"],
                data={"grant_type": "client_credentials", "scope": Scope.PROGRESS_READ.value},
                auth=(settings.portal_verifier_client_id, settings.portal_verifier_client_secret),
            )
            answer.raise_for_status()
            return str(answer.json()["access_token"])
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            log.warning("portal_verifier_token_refused", error=type(exc).__name__)
            raise ServiceUnavailable(f"identity provider: {type(exc).__name__}") from exc


@router.get("/verify/{number}", response_class=HTMLResponse)
async def verify(request: Request, number: str) -> HTMLResponse:
    portal = portal_of(request)
    certificate = verified_number(portal.settings.portal_certificate_key, number)
    genuine = False
    year: dict[str, Any] | None = None
    if certificate is not None:
        standing = await portal.services.get_or_none(
            "progression", f"/api/v1/trainees/{certificate.staff_id}", await _verifier_token(request))
        year = completed_stage(standing, certificate.fiscal_year, certificate.stage)
        genuine = year is not None
    log.info("portal_certificate_verified", genuine=genuine)
    return page(request, "verify.html", None, status_code=200 if genuine else 404, genuine=genuine,
                number=number, certificate=certificate if genuine else None,
                stage_name=(year or {}).get("stage_name") or {})
