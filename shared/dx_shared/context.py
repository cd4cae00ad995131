"""Correlation and causation ids of the request or event being handled, carried in ContextVars."""

from __future__ import annotations

from contextvars import ContextVar, Token

_correlation: ContextVar[str | None] = ContextVar("dx_correlation_id", default=None)
_causation: ContextVar[str | None] = ContextVar("dx_causation_id", default=None)


def correlation_id() -> str | None:
    return _correlation.get()


def causation_id() -> str | None:
    return _causation.get()


def bind(correlation: str | None, causation: str | None) -> tuple[Token[str | None], Token[str | None]]:
    return _correlation.set(correlation), _causation.set(causation)


def reset(tokens: tuple[Token[str | None], Token[str | None]]) -> None:
    _correlation.reset(tokens[0])
    _causation.reset(tokens[1])
