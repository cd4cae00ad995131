"""The dashboard at `/`: the reports rendered server-side into one Japanese page (no scripts, no inline
style, no CDN: the Content-Security-Policy allows none), scoped to the caller (`reporting.visibility`)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from dx_shared.calendar import JST, fiscal_year_label_ja
from dx_shared.roles import Caller
from dx_shared.settings import Settings
from reporting import reports, visibility
from reporting.domain import STAGE_NAMES
from reporting.repository import ReportQueries

STAGE_COLOURS = {1: "#2b6cb0", 2: "#2f855a", 3: "#b7791f", 4: "#9b2c2c", 5: "#6b46c1"}

DASHBOARD_CSS = (files("reporting") / "templates" / "dashboard.css").read_text(encoding="utf-8")

_environment = Environment(
    loader=PackageLoader("reporting", "templates"), autoescape=select_autoescape(["html"]),
    trim_blocks=True, lstrip_blocks=True,
)


def _number(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def _bar_width(share: float | None) -> float:
    return 0.0 if share is None else max(0.0, min(share, 1.0)) * 100


def _jst(iso: str | None) -> str:
    if not iso:
        return "—"
    return datetime.fromisoformat(iso).astimezone(JST).strftime("%Y-%m-%d %H:%M")


def _nice_step(peak: int) -> int:
    """A gridline step of 1, 2 or 5 × 10^k giving three to five lines."""
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            if peak / step <= 5:
                return step
        magnitude *= 10


_environment.filters.update(
    number=_number, percent=_percent, bar=_bar_width, reiwa=fiscal_year_label_ja, jst=_jst
)


def stage_chart(plan: dict[str, Any]) -> dict[str, Any]:
    """Geometry of the stacked column chart: trainees entered per fiscal year, one colour per stage."""
    years = [year["fiscal_year"] for year in plan["fiscal_years"]]
    totals = {year: sum(stage["cells"][i]["entered"] for stage in plan["stages"]) for i, year in enumerate(years)}
    step = _nice_step(max([*totals.values(), 1]))
    peak = step * -(-max([*totals.values(), 1]) // step)
    width, height, left, bottom, top = 640, 300, 56, 40, 28
    slot = (width - left - 16) / max(len(years), 1)
    scale = (height - bottom - top) / peak
    columns = []
    for i, year in enumerate(years):
        x = left + i * slot + slot * 0.2
        y = height - bottom
        segments = []
        for stage in plan["stages"]:
            count = stage["cells"][i]["entered"]
            if count:
                h = count * scale
                y -= h
                segments.append({"stage": stage["stage"], "count": count, "x": x, "y": y, "h": h,
                                 "colour": STAGE_COLOURS[stage["stage"]]})
        columns.append({"fiscal_year": year, "x": x, "w": slot * 0.6, "total": totals[year], "top": y,
                        "segments": segments, "label": fiscal_year_label_ja(year).removesuffix("年度")})
    return {"width": width, "height": height, "baseline": height - bottom, "left": left, "columns": columns,
            "gridlines": [{"value": value, "y": height - bottom - value * scale}
                          for value in range(step, peak + 1, step)],
            "legend": [{"stage": s, "name": STAGE_NAMES[s][0], "colour": c} for s, c in STAGE_COLOURS.items()]}


async def render_dashboard(
    queries: ReportQueries,
    settings: Settings,
    fiscal_year: int,
    caller: Caller,
    dead_letter_queues: list[dict[str, Any]] | None,
) -> str:
    """The programme dashboard for the offices (everything) and department heads (their own department;
    no pipeline panel). `dead_letter_queues` is None for a caller who may not see pipeline health."""
    targets = reports.plan_targets(settings)
    plan = await reports.plan_report(queries, targets, targets.first_year, targets.last_year)
    departments = visibility.departments_seen_by(caller, await reports.department_report(queries, fiscal_year))
    if departments is None:
        raise PermissionError("a trainee gets render_trainee_page")
    baseline = visibility.baseline_seen_by(caller, await reports.baseline_report(queries, fiscal_year))
    pipeline = (
        await reports.pipeline_report(queries, dead_letter_queues)
        if dead_letter_queues is not None and visibility.sees_pipeline(caller)
        else None
    )
    selected_new = next(
        (entry for entry in plan["new_promoters"]["per_year"] if entry["fiscal_year"] == fiscal_year), None
    )
    template = _environment.get_template("dashboard.html")
    return template.render(
        fiscal_year=fiscal_year,
        years=plan["fiscal_years"],
        plan=plan,
        selected_new=selected_new,
        chart=stage_chart(plan),
        departments=departments,
        baseline=baseline,
        pipeline=pipeline,
        generated_at=datetime.now(UTC).astimezone(JST).strftime("%Y-%m-%d %H:%M"),
    )


async def render_trainee_page(queries: ReportQueries, staff_id: str) -> str:
    """A trainee's own page: their years, stages and required sessions, nothing about anyone else."""
    return _environment.get_template("trainee.html").render(
        staff_id=staff_id,
        progress=await reports.trainee_report(queries, staff_id),
        generated_at=datetime.now(UTC).astimezone(JST).strftime("%Y-%m-%d %H:%M"),
    )
