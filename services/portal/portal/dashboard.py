"""The programme dashboard's chart geometry (pure): the stacked column chart of promoters per stage and
fiscal year, drawn as inline SVG so the page needs no script and no inline style."""

from __future__ import annotations

from typing import Any

from dx_shared.calendar import fiscal_year_label_ja

STAGE_COLOURS = {1: "#2b6cb0", 2: "#2f855a", 3: "#b7791f", 4: "#9b2c2c", 5: "#6b46c1"}


def _nice_step(peak: int) -> int:
    """A gridline step of 1, 2 or 5 × 10^k giving three to five lines."""
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            if peak / step <= 5:
                return step
        magnitude *= 10


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
    names = {stage["stage"]: stage.get("name_ja", "") for stage in plan["stages"]}
    return {"width": width, "height": height, "baseline": height - bottom, "left": left, "columns": columns,
            "gridlines": [{"value": value, "y": height - bottom - value * scale}
                          for value in range(step, peak + 1, step)],
            "legend": [{"stage": s, "name": names.get(s, ""), "colour": c} for s, c in STAGE_COLOURS.items()]}
