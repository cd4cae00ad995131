"""The progression service's composition root: `uvicorn progression.main:app --port 8103`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from dx_shared.service import ServiceSpec, build_service
from dx_shared.settings import Settings
from progression import api, handlers

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: Settings | None = None) -> FastAPI:
    app: FastAPI = build_service(
        ServiceSpec(
            name="progression",
            migrations=MIGRATIONS_DIR,
            routers=[api.router],
            subscriptions=[handlers.subscription],
            title="dx-talent progression (デジタル人財育成ステージ)",
            description="The 1→5 stage rules of POLICY.md §4 P1–P8: each trainee-year's stage decided from "
            "the facts (nominations, withdrawals, curricula, completions, waivers, fiscal-year closings), "
            "provisional until the fiscal year is closed, and explained year by year.",
        ),
        settings,
    )
    return app


app = create_app()
