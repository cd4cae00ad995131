"""Composition root of the training service: `uvicorn training.main:app`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from dx_shared.logging import get_logger
from dx_shared.service import ServiceSpec, build_service
from dx_shared.settings import DEMO_WEBHOOK_SECRET, Settings
from training import api, handlers

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

log = get_logger(__name__)


async def warn_about_the_demo_secret(app: FastAPI) -> None:
    if app.state.settings.webhook_secrets == DEMO_WEBHOOK_SECRET:
        log.warning(
            "webhook_demo_secret_in_use", secret=DEMO_WEBHOOK_SECRET, hint="set DX_WEBHOOK_SECRETS in production"
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_service(
        ServiceSpec(
            name="training",
            migrations=MIGRATIONS_DIR,
            routers=[api.router],
            subscriptions=[handlers.subscription],
            on_startup=[warn_about_the_demo_secret],
            title="dx-talent training (研修)",
            description="Sessions, curricula, attendance, waivers and e-learning completions (POLICY.md §3 and P2).",
        ),
        settings,
    )


app = create_app()
