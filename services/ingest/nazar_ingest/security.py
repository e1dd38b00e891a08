"""API-key authentication and scopes (adapter: reads ``api_keys``)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncpg

from nazar_common.auth import Scope, grants, split_key, verify_secret
from nazar_common.db.pool import is_connection_error
from nazar_common.errors import AuthenticationError, PermissionDeniedError, TransientError


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    scopes: frozenset[Scope]


@dataclass
class _Entry:
    secret_hash: str | None  # None: no such key, or revoked
    name: str
    scopes: frozenset[Scope]
    fetched: float


class KeyStore:
    """Verifies keys against the database with a short cache. While the
    database is unreachable, cached keys keep working so ingest can go on."""

    def __init__(self, pool: asyncpg.Pool, ttl: float = 10.0, timeout: float = 5.0) -> None:
        self.pool = pool
        self.ttl = ttl
        self.timeout = timeout
        self._cache: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def _load(self, key_id: str) -> _Entry:
        row = await asyncio.wait_for(
            self.pool.fetchrow(
                "SELECT secret_hash, name, scopes FROM api_keys "
                "WHERE key_id = $1 AND revoked_at IS NULL",
                key_id,
            ),
            self.timeout,
        )
        if row is None:
            return _Entry(None, "", frozenset(), time.monotonic())
        return _Entry(
            row["secret_hash"],
            row["name"],
            frozenset(Scope(s) for s in row["scopes"]),
            time.monotonic(),
        )

    async def _entry(self, key_id: str) -> _Entry:
        entry = self._cache.get(key_id)
        if entry is not None and time.monotonic() - entry.fetched < self.ttl:
            return entry
        lock = self._locks.setdefault(key_id, asyncio.Lock())
        async with lock:
            entry = self._cache.get(key_id)
            if entry is not None and time.monotonic() - entry.fetched < self.ttl:
                return entry
            try:
                fresh = await self._load(key_id)
            except Exception as exc:
                if entry is not None and (
                    is_connection_error(exc) or isinstance(exc, TimeoutError)
                ):
                    return entry  # stale but known: keep ingest going
                if is_connection_error(exc) or isinstance(exc, TimeoutError):
                    raise TransientError("cannot verify the API key now", retry_after=5) from exc
                raise
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_id] = fresh
            return fresh

    async def authenticate(self, authorization: str | None, needed: Scope | None) -> Principal:
        """The key's principal; ``needed`` None accepts a valid key of any scope."""
        if not authorization:
            raise AuthenticationError("send 'Authorization: Bearer <API key>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() not in ("bearer", "token") or not token:
            raise AuthenticationError("use the Bearer scheme: 'Authorization: Bearer <API key>'")
        parts = split_key(token)
        if parts is None:
            raise AuthenticationError("malformed API key")
        key_id, secret = parts
        entry = await self._entry(key_id)
        if entry.secret_hash is None or not verify_secret(secret, entry.secret_hash):
            raise AuthenticationError("unknown or revoked API key")
        if needed is not None and not grants(entry.scopes, needed):
            raise PermissionDeniedError(
                f"this key has scope(s) {', '.join(sorted(entry.scopes))}; "
                f"this endpoint needs {needed.value}"
            )
        return Principal(key_id, entry.name, entry.scopes)

    def forget(self, key_id: str) -> None:
        self._cache.pop(key_id, None)
