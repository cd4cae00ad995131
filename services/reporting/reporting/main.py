"""Composition root of the reporting service: `uvicorn reporting.main:app --port 8104`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from dx_shared.service import ServiceSpec, build_service
from dx_shared.settings import Settings
from reporting import api, handlers

SERVICE = "reporting"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: Settings | None = None) -> FastAPI:
    app: FastAPI = build_service(
        ServiceSpec(
            name=SERVICE,
            migrations=MIGRATIONS_DIR,
            routers=[api.router],
            subscriptions=[handlers.subscription],
            title="dx-talent reporting",
            description="育成計画・所属別・基礎研修・受講者・研修・パイプラインの各レポートとダッシュボード "
            "(the plan, department, baseline, trainee, session and pipeline reports, and the dashboard).",
        ),
        settings,
    )
    return app


app = create_app()
