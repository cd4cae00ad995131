"""The portal's server-side sessions and sign-ins under way, in its own schema `portal` (asyncpg)."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import asyncpg

from dx_shared.roles import Caller
from portal.domain import SIGN_IN_LIFETIME, SessionTimes, session_expired


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def session_key(cookie_value: str) -> str:
    """What the portal's tables key a session by: never the cookie itself."""
    return hashlib.sha256(cookie_value.encode()).hexdigest()


_key = session_key


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    id_token: str | None
    access_expires_at: datetime


@dataclass(frozen=True)
class PortalSession:
    cookie_value: str
    subject: str
    role: str
    department_code: str | None
    staff_id: str | None
    tokens: Tokens
    csrf_token: str
    times: SessionTimes


class SessionStore(Protocol):
    async def begin_sign_in(self, state_data: dict[str, Any], next_path: str, now: datetime) -> str: ...
    async def take_sign_in(self, cookie_value: str, now: datetime) -> tuple[dict[str, Any], str] | None: ...
    async def open(self, caller: Caller, tokens: Tokens, now: datetime, idle: timedelta, absolute: timedelta) -> str: ...
    async def find(self, cookie_value: str, now: datetime) -> PortalSession | None: ...
    async def replace_tokens(self, cookie_value: str, tokens: Tokens) -> None: ...
    async def close(self, cookie_value: str) -> PortalSession | None: ...


class PostgresSessionStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def begin_sign_in(self, state_data: dict[str, Any], next_path: str, now: datetime) -> str:
        cookie_value = new_secret()
        async with self._pool.acquire() as conn:
            await conn.execute("DELETE FROM sign_ins WHERE created_at < $1", now - SIGN_IN_LIFETIME)
            await conn.execute(
                "INSERT INTO sign_ins (id_hash, state_data, next_path, created_at) VALUES ($1, $2::jsonb, $3, $4)",
                _key(cookie_value), json.dumps(state_data), next_path, now,
            )
        return cookie_value

    async def take_sign_in(self, cookie_value: str, now: datetime) -> tuple[dict[str, Any], str] | None:
        row = await self._pool.fetchrow(
            "DELETE FROM sign_ins WHERE id_hash = $1 RETURNING state_data, next_path, created_at", _key(cookie_value)
        )
        if row is None or row["created_at"] < now - SIGN_IN_LIFETIME:
            return None
        return json.loads(row["state_data"]), str(row["next_path"])

    async def open(self, caller: Caller, tokens: Tokens, now: datetime, idle: timedelta, absolute: timedelta) -> str:
        cookie_value = new_secret()
        async with self._pool.acquire() as conn:
            await conn.execute("DELETE FROM sessions WHERE created_at + absolute_timeout < $1", now)
            await conn.execute(
                """INSERT INTO sessions (id_hash, subject, role, department_code, staff_id, access_token,
                       refresh_token, id_token, access_expires_at, csrf_token, created_at, last_seen_at,
                       idle_timeout, absolute_timeout)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13)""",
                _key(cookie_value), caller.subject or "", caller.role.value, caller.department_code,
                caller.staff_id, tokens.access_token, tokens.refresh_token, tokens.id_token,
                tokens.access_expires_at, new_secret(), now, idle, absolute,
            )
        return cookie_value

    async def find(self, cookie_value: str, now: datetime) -> PortalSession | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM sessions WHERE id_hash = $1", _key(cookie_value))
            if row is None:
                return None
            session = _session(cookie_value, row)
            if session_expired(session.times, now):
                await conn.execute("DELETE FROM sessions WHERE id_hash = $1", _key(cookie_value))
                return None
            await conn.execute("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1", _key(cookie_value), now)
        return session

    async def replace_tokens(self, cookie_value: str, tokens: Tokens) -> None:
        await self._pool.execute(
            """UPDATE sessions SET access_token = $2, refresh_token = coalesce($3, refresh_token),
                   id_token = coalesce($4, id_token), access_expires_at = $5 WHERE id_hash = $1""",
            _key(cookie_value), tokens.access_token, tokens.refresh_token, tokens.id_token, tokens.access_expires_at,
        )

    async def close(self, cookie_value: str) -> PortalSession | None:
        row = await self._pool.fetchrow("DELETE FROM sessions WHERE id_hash = $1 RETURNING *", _key(cookie_value))
        return None if row is None else _session(cookie_value, row)


def _session(cookie_value: str, row: asyncpg.Record) -> PortalSession:
    return PortalSession(
        cookie_value=cookie_value,
        subject=row["subject"],
        role=row["role"],
        department_code=row["department_code"],
        staff_id=row["staff_id"],
        tokens=Tokens(row["access_token"], row["refresh_token"], row["id_token"], row["access_expires_at"]),
        csrf_token=row["csrf_token"],
        times=SessionTimes(row["created_at"], row["last_seen_at"], row["idle_timeout"], row["absolute_timeout"]),
    )
