"""The files held between an import's preview and its confirmation, in the portal's own schema (asyncpg)."""

from __future__ import annotations

import secrets
from datetime import datetime

import asyncpg

from portal.office_rules import DRAFT_LIFETIME, HeldFile, digest_of
from portal.sessions import session_key


class PostgresDraftStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def hold(self, cookie_value: str, kind: str, fiscal_year: int, filename: str, content: bytes,
                   now: datetime) -> HeldFile:
        held = HeldFile(
            draft_id=secrets.token_urlsafe(24), session_key=session_key(cookie_value), kind=kind,
            fiscal_year=fiscal_year, filename=filename, content=content, sha256=digest_of(content),
            created_at=now, expires_at=now + DRAFT_LIFETIME,
        )
        async with self._pool.acquire() as conn:
            await self.purge_expired(now, conn)
            await conn.execute(
                "INSERT INTO import_drafts (draft_id, session_key, kind, fiscal_year, filename, content, sha256,"
                " created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                held.draft_id, held.session_key, kind, fiscal_year, filename, content, held.sha256, now,
                held.expires_at,
            )
        return held

    async def purge_expired(self, now: datetime, conn: asyncpg.Connection | None = None) -> None:
        """A roster holds names: a file nobody confirmed is not kept past its expiry longer than the next
        visit to an import page."""
        await (conn or self._pool).execute("DELETE FROM import_drafts WHERE expires_at < $1", now)

    async def find(self, draft_id: str) -> HeldFile | None:
        row = await self._pool.fetchrow("SELECT * FROM import_drafts WHERE draft_id = $1", draft_id)
        return None if row is None else HeldFile(**dict(row))

    async def discard(self, draft_id: str) -> None:
        await self._pool.execute("DELETE FROM import_drafts WHERE draft_id = $1", draft_id)
