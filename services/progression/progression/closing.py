"""When a fiscal year may be closed (P6): pure rules, `now` given by the caller.

A fiscal year ends at 00:00 on 1 April after it, Japan time; closing it earlier is refused, unless the DX
office asks for an explicit early close and says why (the reason goes into FiscalYearClosed and the log).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from dx_shared.calendar import fiscal_year_end, fiscal_year_has_ended, fiscal_year_label_ja


class ClosingRefused(Exception):
    status: ClassVar[int] = 409
    code: ClassVar[str] = "CLOSING_REFUSED"
    title_en: ClassVar[str] = "The fiscal year cannot be closed"
    title_ja: ClassVar[str] = "この年度は締められません"

    def __init__(self, detail: str, detail_ja: str) -> None:
        super().__init__(f"{self.code}: {detail}")
        self.detail = detail
        self.detail_ja = detail_ja


class FiscalYearNotEnded(ClosingRefused):
    code = "FISCAL_YEAR_NOT_ENDED"
    title_en = "The fiscal year has not ended; it can be closed from 1 April after it"
    title_ja = "年度が終了していないため締められません（翌年度の4月1日から締められます）"


class EarlyCloseReasonRequired(ClosingRefused):
    status = 422
    code = "EARLY_CLOSE_REASON_REQUIRED"
    title_en = "An early close must give its reason"
    title_ja = "年度途中の締めには理由が必要です"


class EarlyCloseNotPermitted(ClosingRefused):
    status = 403
    code = "EARLY_CLOSE_NOT_PERMITTED"
    title_en = "Only the DX promotion office may close a fiscal year early"
    title_ja = "年度途中の締めはDX推進課のみが行えます"


@dataclass(frozen=True)
class ClosingPermit:
    """A closing that may go ahead; `early` with its reason when the year has not ended."""

    fiscal_year: int
    early: bool
    reason: str | None


def may_close(
    fiscal_year: int,
    now: datetime,
    *,
    early_close: bool = False,
    reason: str | None = None,
    by_dx_office: bool,
) -> ClosingPermit:
    """A year that has ended may be closed; one that has not only by the DX office's explicit early close
    with a reason. Raises a `ClosingRefused` naming the rule otherwise."""
    if fiscal_year_has_ended(fiscal_year, now):
        return ClosingPermit(fiscal_year, early=False, reason=reason.strip() if reason and reason.strip() else None)
    label = fiscal_year_label_ja(fiscal_year)
    ends = fiscal_year_end(fiscal_year).date().isoformat()
    if not early_close:
        raise FiscalYearNotEnded(
            f"FY{fiscal_year} ends on {ends} (Japan time); to close it early, send early_close: true with a reason",
            f"{label}は{ends}に終了します。年度途中で締める場合は early_close: true と理由を指定してください",
        )
    if not by_dx_office:
        raise EarlyCloseNotPermitted(f"FY{fiscal_year} has not ended", f"{label}は終了していません")
    if reason is None or not reason.strip():
        raise EarlyCloseReasonRequired(
            f"FY{fiscal_year} has not ended; an early close needs a reason",
            f"{label}は終了していません。年度途中の締めには理由が必要です",
        )
    return ClosingPermit(fiscal_year, early=True, reason=reason.strip())
