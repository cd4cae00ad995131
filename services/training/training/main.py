"""Composition root of the training service: `uvicorn training.main:app`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from dx_shared.service import ServiceSpec, build_service
from dx_shared.settings import Settings
from training import api, handlers

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_service(
        ServiceSpec(
            name="training",
            migrations=MIGRATIONS_DIR,
            routers=[api.router],
            subscriptions=[handlers.subscription],
            title="dx-talent training (研修)",
            description="Sessions, curricula, attendance, waivers and e-learning completions (POLICY.md §3 and P2).",
        ),
        settings,
    )


app = create_app()
