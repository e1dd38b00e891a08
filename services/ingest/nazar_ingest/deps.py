"""FastAPI dependencies: the application state and authentication."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from fastapi import Depends, Request
from starlette.requests import ClientDisconnect
from starlette.types import Receive

from nazar_common.auth import Scope
from nazar_common.db.backends import StorageBackend
from nazar_common.db.pool import is_connection_error
from nazar_common.errors import InvalidInputError, PayloadTooLargeError, TransientError
from nazar_common.messaging.broker import Broker
from nazar_ingest.security import KeyStore, Principal
from nazar_ingest.settings import IngestSettings


@dataclass
class AppState:
    settings: IngestSettings
    pool: asyncpg.Pool
    broker: Broker
    keys: KeyStore
    backend: StorageBackend | None = None
    accepter: Any = None  # nazar_ingest.pipeline.Accepter, once storage is ready
    runtime: Any = None  # nazar_common.runtime.worker.Runtime
    extras: dict[str, Any] = field(default_factory=dict)


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.nazar
    return state


def require(scope: Scope | None) -> Callable[..., Awaitable[Principal]]:
    """Dependency: the caller's key must grant ``scope`` (None: any valid key)."""

    async def dependency(request: Request, state: AppState = Depends(get_state)) -> Principal:
        principal = await state.keys.authenticate(request.headers.get("authorization"), scope)
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{scope.value if scope else 'key'}"
    return dependency


async def get_pool(state: AppState = Depends(get_state)) -> asyncpg.Pool:
    return state.pool


async def get_backend(state: AppState = Depends(get_state)) -> StorageBackend:
    if state.backend is None:
        raise TransientError("storage is not ready yet", retry_after=5)
    return state.backend


@contextlib.asynccontextmanager
async def connection(state: AppState) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection; an unreachable database is a 503, not a 500."""
    try:
        async with state.pool.acquire(timeout=state.settings.dependency_timeout) as conn:
            yield conn
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        if isinstance(exc, TimeoutError) or is_connection_error(exc):
            raise TransientError("the database is not reachable", retry_after=5) from exc
        raise


async def read_raw_body(request: Request, max_bytes: int) -> bytes:
    """The body as sent (no Content-Encoding handling), at most ``max_bytes``."""
    return await receive_body(request.receive, request.headers.get("content-length"), max_bytes)


async def receive_body(receive: Receive, content_length: str | None, max_bytes: int) -> bytes:
    """Read a body from an ASGI ``receive``, refusing more than ``max_bytes``
    (announced by Content-Length, or as it arrives)."""
    if content_length is not None and content_length.isdigit() and int(content_length) > max_bytes:
        raise PayloadTooLargeError(
            f"body of {content_length} bytes exceeds the limit of {max_bytes}"
        )
    chunks = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > max_bytes:
            raise PayloadTooLargeError(f"body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, gunzipped if needed, never more than ``max_bytes``
    (counted after decompression, so a gzip bomb is refused)."""
    body = await read_raw_body(request, max_bytes)
    return decode_body(body, request.headers.get("content-encoding"), max_bytes)


def decode_body(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """``body`` decoded by its Content-Encoding (identity, gzip or deflate),
    refused when it would exceed ``max_bytes`` decompressed."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise InvalidInputError(f"unsupported Content-Encoding {encoding!r}; use gzip")
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    decomp = zlib.decompressobj(wbits)
    try:
        out = decomp.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise InvalidInputError(f"body is not valid {encoding}: {exc}") from exc
    if len(out) > max_bytes or decomp.unconsumed_tail:
        raise PayloadTooLargeError(f"decompressed body exceeds the limit of {max_bytes} bytes")
    if not decomp.eof:
        raise InvalidInputError(f"truncated {encoding} body")
    return out
