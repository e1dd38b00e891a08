"""API keys in the database, for the API and the CLI alike."""

from __future__ import annotations

from typing import Literal

import asyncpg

#: Explanation given when the last admin key is to be revoked.
LAST_ADMIN_KEY = (
    "this is the last active admin key: without it nobody could manage keys, rules or "
    "channels through the API; create another admin key first, then revoke this one"
)

Revocation = Literal["revoked", "unknown", "last_admin"]


async def revoke_key(conn: asyncpg.Connection, key_id: str) -> Revocation:
    """Revoke an active key, unless it is the last active admin key.

    The active admin keys are locked first, so two revocations at once
    cannot each leave the other key as the last one and revoke both."""
    async with conn.transaction():
        admins = {
            r["key_id"]
            for r in await conn.fetch(
                "SELECT key_id FROM api_keys WHERE 'admin' = ANY(scopes) "
                "AND revoked_at IS NULL FOR UPDATE"
            )
        }
        if admins == {key_id}:
            return "last_admin"
        done = await conn.fetchval(
            "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL "
            "RETURNING key_id",
            key_id,
        )
    return "unknown" if done is None else "revoked"
