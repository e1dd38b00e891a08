"""FastAPI dependencies: the application state and authentication."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import asyncpg
from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect
from starlette.types import Receive

from nazar_common.auth import Scope
from nazar_common.db.backends import StorageBackend
from nazar_common.db.pool import is_connection_error
from nazar_common.errors import (
    InvalidInputError,
    PayloadTooLargeError,
    TransientError,
    UnsupportedMediaTypeError,
)
from nazar_common.messaging.broker import Broker
from nazar_common.schemas.config import WRITE
from nazar_ingest.jsonbody import load_json
from nazar_ingest.problems import invalid_input
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


def is_json_media(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` names JSON (``application/json`` or
    ``application/*+json``); an absent one counts as JSON."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def require_json_media(content_type: str | None) -> None:
    """415 unless ``content_type`` names JSON."""
    if not is_json_media(content_type):
        media = (content_type or "").split(";", 1)[0].strip()[:100]
        raise UnsupportedMediaTypeError(
            f"Content-Type {media!r} is not supported here; send JSON "
            "(Content-Type: application/json)"
        )


async def json_object(
    request: Request, state: Annotated[AppState, Depends(get_state)]
) -> dict[str, Any]:
    """Dependency: the request's JSON object body (an empty body is ``{}``):
    415 unless it is JSON, 413 beyond ``max_request_bytes``, 400 if it is
    not an object or nests deeper than :data:`MAX_JSON_DEPTH`."""
    require_json_media(request.headers.get("content-type"))
    body = await read_body(request, state.settings.max_request_bytes)
    if not body.strip():
        return {}
    doc = load_json(body)
    if not isinstance(doc, dict):
        raise InvalidInputError("the body must be a JSON object")
    return doc


#: A JSON object body; declare its schema with ``openapi.json_body``.
JsonObject = Annotated[dict[str, Any], Depends(json_object)]

ModelT = TypeVar("ModelT", bound=BaseModel)


def validated(model: type[ModelT], raw: Any, what: str) -> ModelT:
    """``raw`` validated as ``model`` being written; 400 listing the invalid fields."""
    try:
        return model.model_validate(raw, context=WRITE)
    except ValidationError as exc:
        raise invalid_input(exc, what) from None
