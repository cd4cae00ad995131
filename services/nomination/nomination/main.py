"""The nomination service's composition root: `uvicorn nomination.main:app --port 8101`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from dx_shared.service import ServiceSpec, build_service
from dx_shared.settings import Settings
from nomination import api, handlers

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: Settings | None = None) -> FastAPI:
    app: FastAPI = build_service(
        ServiceSpec(
            name="nomination",
            migrations=MIGRATIONS_DIR,
            routers=[api.router],
            subscriptions=[handlers.subscription],
            title="dx-talent nomination (推薦・自薦)",
            description="Department lists and staff rosters per fiscal year, and the recommended (推薦枠) and "
            "self (自薦枠) nominations of DX promoters under POLICY.md §4 N1–N6.",
        ),
        settings,
    )
    return app


app = create_app()
