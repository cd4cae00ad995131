"""Each service can have a database of its own, falling back to the shared one."""

from __future__ import annotations

import pytest

from dx_shared.settings import Settings

SHARED = "postgresql://dx@db:5432/dx"


def test_without_per_service_urls_every_service_uses_the_shared_database() -> None:
    settings = Settings(database_url=SHARED)
    assert {settings.database_url_of(s) for s in ("nomination", "training", "progression", "reporting")} == {SHARED}


def test_a_per_service_url_from_the_environment_wins_for_that_service_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DX_DATABASE_URL", SHARED)
    monkeypatch.setenv("DX_TRAINING_DATABASE_URL", "postgresql://training@training-db:5432/training")
    settings = Settings()
    assert settings.database_url_of("training") == "postgresql://training@training-db:5432/training"
    assert settings.database_url_of("nomination") == SHARED
    assert settings.database_url_of("reporting") == SHARED


def test_an_empty_per_service_url_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DX_PROGRESSION_DATABASE_URL", "")
    assert Settings(database_url=SHARED).database_url_of("progression") == SHARED


def test_an_unknown_service_has_no_database() -> None:
    with pytest.raises(AttributeError):
        Settings().database_url_of("payroll")
