"""Composition root of the training service: `uvicorn training.main:app`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from dx_shared.logging import get_logger
from dx_shared.service import ServiceSpec, build_service
from dx_shared.settings import DEMO_WEBHOOK_SECRET, Settings
from training import api, handlers
from training.webhook import check_secrets

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

log = get_logger(__name__)


def refuse_unfit_webhook_secrets(settings: Settings) -> None:
    """Before anything starts: no secret (outside demo mode) or an unfit one stops the service."""
    check_secrets(settings.webhook_secret_list, demo_mode=settings.demo_mode, demo_secret=DEMO_WEBHOOK_SECRET)


async def warn_about_the_demo_secret(app: FastAPI) -> None:
    if DEMO_WEBHOOK_SECRET in app.state.settings.webhook_secret_list:
        # Never the secret itself: `./dx up` prints it to the operator's terminal, not to the logs.
        log.warning("webhook_demo_secret_in_use", hint="demo mode; set DX_WEBHOOK_SECRETS in production")


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_service(
        ServiceSpec(
            name="training",
            migrations=MIGRATIONS_DIR,
            routers=[api.router],
            subscriptions=[handlers.subscription],
            check_settings=[refuse_unfit_webhook_secrets],
            on_startup=[warn_about_the_demo_secret],
            title="dx-talent training (研修)",
            description="Sessions, curricula, attendance, waivers and e-learning completions (POLICY.md §3 and P2).",
        ),
        settings,
    )


app = create_app()
