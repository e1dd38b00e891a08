"""Notification operations: silences, recurring mute windows, the delivery log,
failed (dead-lettered) notifications and channel test messages.

Silences and mute windows are stored here and evaluated by the notifier,
which re-reads them on the ``nazar_config`` notification. A test message is
sent by the notifier itself (its internal endpoint at ``notifier_url``) so it
exercises the same code, network path and secrets as real alerts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import aio_pika
import asyncpg
import httpx
import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from nazar_common.auth import Scope
from nazar_common.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    TransientError,
)
from nazar_common.messaging import deadletters
from nazar_common.schemas.config import NAME_PATTERN
from nazar_common.schemas.silences import MuteWindowSpec, SilenceSpec
from nazar_ingest.deps import AppState, JsonObject, get_state, require, validated
from nazar_ingest.openapi import json_body
from nazar_ingest.security import Principal

router = APIRouter(tags=["notifications"])
Reader = Annotated[Principal, Depends(require(Scope.READ))]
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]
State = Annotated[AppState, Depends(get_state)]
Name = Annotated[str, Path(pattern=NAME_PATTERN)]

T = TypeVar("T")
DeliveryStatus = Literal["sent", "retry", "failed", "short_circuited", "silenced"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# ---------------------------------------------------------------- silences


def _silence_out(row: asyncpg.Record, now: datetime) -> dict[str, Any]:
    if row["ends_at"] <= now:
        state = "expired"
    elif row["starts_at"] > now:
        state = "pending"
    else:
        state = "active"
    return {
        "id": str(row["id"]),
        "matchers": orjson.loads(row["matchers"]),
        "starts_at": _iso(row["starts_at"]),
        "ends_at": _iso(row["ends_at"]),
        "created_by": row["created_by"],
        "comment": row["comment"],
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
        "state": state,
    }


_SILENCE_COLUMNS = (
    "id, matchers::text AS matchers, starts_at, ends_at, created_by, comment, created_at, "
    "updated_at"
)


@router.get("/api/v1/silences", tags=["silences"], summary="List silences")
async def list_silences(
    state: State,
    _: Reader,
    active: Annotated[bool, Query(description="Only silences not yet expired.")] = False,
) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    where = "WHERE ends_at > $1" if active else "WHERE $1::timestamptz IS NOT NULL"
    rows = await state.pool.fetch(
        f"SELECT {_SILENCE_COLUMNS} FROM silences {where} ORDER BY starts_at DESC LIMIT 1000",
        now,
    )
    return [_silence_out(r, now) for r in rows]


@router.get("/api/v1/silences/{silence_id}", tags=["silences"], summary="Get a silence")
async def get_silence(silence_id: uuid.UUID, state: State, _: Reader) -> dict[str, Any]:
    row = await state.pool.fetchrow(
        f"SELECT {_SILENCE_COLUMNS} FROM silences WHERE id = $1", silence_id
    )
    if row is None:
        raise NotFoundError(f"no silence {silence_id}")
    return _silence_out(row, datetime.now(UTC))


@router.post(
    "/api/v1/silences",
    tags=["silences"],
    status_code=201,
    summary="Create a silence",
    openapi_extra={"requestBody": json_body(SilenceSpec)},
)
async def create_silence(
    state: State, principal: Admin, body: JsonObject
) -> dict[str, Any]:
    spec = validated(SilenceSpec, body, "silence")
    now = datetime.now(UTC)
    starts_at = spec.starts_at or now
    if spec.ends_at <= starts_at:
        raise InvalidInputError("ends_at must be in the future and after starts_at")
    row = await state.pool.fetchrow(
        f"INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment) "
        f"VALUES ($1, $2::jsonb, $3, $4, $5, $6) RETURNING {_SILENCE_COLUMNS}",
        uuid.uuid4(),
        orjson.dumps([m.model_dump() for m in spec.matchers]).decode(),
        starts_at,
        spec.ends_at,
        spec.created_by or principal.name or principal.key_id,
        spec.comment,
    )
    assert row is not None
    return _silence_out(row, now)


@router.delete(
    "/api/v1/silences/{silence_id}", tags=["silences"], summary="Expire a silence now"
)
async def expire_silence(silence_id: uuid.UUID, state: State, _: Admin) -> dict[str, Any]:
    now = datetime.now(UTC)
    row = await state.pool.fetchrow(
        f"UPDATE silences SET ends_at = least(ends_at, $2), updated_at = $2 WHERE id = $1 "
        f"RETURNING {_SILENCE_COLUMNS}",
        silence_id,
        now,
    )
    if row is None:
        raise NotFoundError(f"no silence {silence_id}")
    return _silence_out(row, now)


# ---------------------------------------------------------------- mute windows

_WINDOW_COLUMNS = "id, name, spec::text AS spec, created_by, version, created_at, updated_at"


def _window_out(row: asyncpg.Record) -> dict[str, Any]:
    spec = MuteWindowSpec.model_validate(orjson.loads(row["spec"]))
    return {
        "id": row["id"],
        "name": row["name"],
        "version": row["version"],
        "created_by": row["created_by"],
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
        "active_now": spec.active_at(datetime.now(UTC)),
        "spec": spec.model_dump(mode="json"),
    }


def _parse_window(body: dict[str, Any]) -> MuteWindowSpec:
    return validated(MuteWindowSpec, body, "mute window")


@router.get("/api/v1/mute-windows", tags=["mute-windows"], summary="List mute windows")
async def list_windows(state: State, _: Reader) -> list[dict[str, Any]]:
    rows = await state.pool.fetch(f"SELECT {_WINDOW_COLUMNS} FROM mute_windows ORDER BY name")
    return [_window_out(r) for r in rows]


@router.get("/api/v1/mute-windows/{name}", tags=["mute-windows"], summary="Get a mute window")
async def get_window(name: Name, state: State, _: Reader) -> dict[str, Any]:
    row = await state.pool.fetchrow(
        f"SELECT {_WINDOW_COLUMNS} FROM mute_windows WHERE name = $1", name
    )
    if row is None:
        raise NotFoundError(f"no mute window named {name!r}")
    return _window_out(row)


@router.post(
    "/api/v1/mute-windows",
    tags=["mute-windows"],
    status_code=201,
    summary="Create a mute window",
    openapi_extra={"requestBody": json_body(MuteWindowSpec)},
    responses={409: {"description": "The name exists; use PUT to replace"}},
)
async def create_window(state: State, principal: Admin, body: JsonObject) -> dict[str, Any]:
    spec = _parse_window(body)
    row = await state.pool.fetchrow(
        f"INSERT INTO mute_windows (name, spec, created_by) VALUES ($1, $2::jsonb, $3) "
        f"ON CONFLICT (name) DO NOTHING RETURNING {_WINDOW_COLUMNS}",
        spec.name,
        spec.model_dump_json(),
        principal.name or principal.key_id,
    )
    if row is None:
        raise ConflictError(f"a mute window named {spec.name!r} exists; use PUT")
    return _window_out(row)


@router.put(
    "/api/v1/mute-windows/{name}",
    tags=["mute-windows"],
    summary="Create or replace a mute window",
    openapi_extra={"requestBody": json_body(MuteWindowSpec)},
    responses={201: {"description": "Created", "content": {"application/json": {}}}},
)
async def put_window(name: Name, state: State, principal: Admin, body: JsonObject) -> JSONResponse:
    body = {**body, "name": body.get("name", name)}
    if body["name"] != name:
        raise InvalidInputError(f"the body names {body['name']!r} but the URL {name!r}")
    spec = _parse_window(body)
    row = await state.pool.fetchrow(
        f"INSERT INTO mute_windows (name, spec, created_by) VALUES ($1, $2::jsonb, $3) "
        f"ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec, updated_at = now(), "
        f"version = mute_windows.version + 1 "
        f"RETURNING {_WINDOW_COLUMNS}, (xmax = 0) AS created",
        name,
        spec.model_dump_json(),
        principal.name or principal.key_id,
    )
    assert row is not None
    return JSONResponse(_window_out(row), status_code=201 if row["created"] else 200)


@router.delete(
    "/api/v1/mute-windows/{name}",
    tags=["mute-windows"],
    status_code=204,
    summary="Delete a mute window",
)
async def delete_window(name: Name, state: State, _: Admin) -> None:
    if await state.pool.fetchval("DELETE FROM mute_windows WHERE name = $1 RETURNING id", name) \
            is None:
        raise NotFoundError(f"no mute window named {name!r}")


# ---------------------------------------------------------------- deliveries and failures


@router.get("/api/v1/deliveries", tags=["deliveries"], summary="Delivery attempts, newest first")
async def list_deliveries(
    state: State,
    _: Reader,
    channel: str | None = None,
    status: DeliveryStatus | None = None,
    since: datetime | None = None,
    notification_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    rows = await state.pool.fetch(
        "SELECT d.id, d.notification_id, d.channel, d.channel_type, d.endpoint, d.attempt, "
        "d.status, d.http_status, d.error, d.duration_ms, d.at, n.kind, n.group_key, "
        "n.dedupe_key, n.status AS notification_status "
        "FROM deliveries d LEFT JOIN notifications n ON n.id = d.notification_id "
        "WHERE ($1::text IS NULL OR d.channel = $1) AND ($2::text IS NULL OR d.status = $2) "
        "AND ($3::timestamptz IS NULL OR d.at >= $3) "
        "AND ($4::bigint IS NULL OR d.notification_id = $4) "
        "ORDER BY d.at DESC, d.id DESC LIMIT $5",
        channel,
        status,
        since,
        notification_id,
        limit,
    )
    return [
        {
            "id": r["id"],
            "notification_id": r["notification_id"],
            "channel": r["channel"],
            "channel_type": r["channel_type"],
            "endpoint": r["endpoint"],
            "attempt": r["attempt"],
            "status": r["status"],
            "http_status": r["http_status"],
            "error": r["error"],
            "duration_ms": r["duration_ms"],
            "at": _iso(r["at"]),
            "kind": r["kind"],
            "group_key": r["group_key"],
            "dedupe_key": r["dedupe_key"],
            "notification_status": r["notification_status"],
        }
        for r in rows
    ]


@router.get("/api/v1/dlq", tags=["deliveries"], summary="Failed notifications")
async def list_failed(
    state: State,
    _: Reader,
    channel: str | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Notifications that exhausted their retry budget (or failed permanently).

    Their alert events were dead-lettered to ``nazar.notifier.alerts.dlq``;
    ``nazar dlq replay`` sends them back for another delivery."""
    rows = await state.pool.fetch(
        "SELECT id, channel, channel_type, kind, group_key, attempts, last_error, created_at, "
        "finished_at, payload::text AS payload FROM notifications "
        "WHERE status = 'failed' AND kind <> 'test' AND ($1::text IS NULL OR channel = $1) "
        "AND ($2::timestamptz IS NULL OR finished_at >= $2) "
        "ORDER BY finished_at DESC LIMIT $3",
        channel,
        since,
        limit,
    )
    total = await state.pool.fetchval(
        "SELECT count(*) FROM notifications WHERE status = 'failed' AND kind <> 'test'"
    )
    items = []
    for r in rows:
        payload = orjson.loads(r["payload"])
        items.append(
            {
                "notification_id": r["id"],
                "channel": r["channel"],
                "channel_type": r["channel_type"],
                "kind": r["kind"],
                "group_key": r["group_key"],
                "attempts": r["attempts"],
                "error": r["last_error"],
                "created_at": _iso(r["created_at"]),
                "failed_at": _iso(r["finished_at"]),
                "alerts": [
                    {k: a.get(k) for k in ("fingerprint", "status", "rule", "host", "severity")}
                    for a in payload.get("alerts", [])
                ],
            }
        )
    return {"queue": "nazar.notifier.alerts.dlq", "failed_total": total, "items": items}


class ReplayIn(BaseModel):
    queue: str = Field(default=deadletters.DEFAULT_QUEUE, description="Dead-letter queue.")
    limit: int = Field(default=1000, ge=1, le=100_000, description="Most messages to move.")


async def _broker_call(state: AppState, call: Awaitable[T]) -> T:
    """A call on ingest's broker connection; an unreachable broker is a 503."""
    try:
        return await asyncio.wait_for(call, timeout=max(30.0, state.settings.dependency_timeout))
    except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
        raise TransientError(
            f"the broker is not reachable ({type(exc).__name__})", retry_after=10
        ) from None


@router.get(
    "/api/v1/dlq/queues", tags=["deliveries"], summary="Messages waiting in each dead-letter queue"
)
async def dead_letter_queues(state: State, _: Reader) -> list[dict[str, Any]]:
    found = await _broker_call(
        state, deadletters.depths(state.broker, deadletters.DEAD_LETTER_QUEUES)
    )
    return [{"queue": name, "messages": count} for name, count in found.items()]


@router.post(
    "/api/v1/dlq/replay",
    tags=["deliveries"],
    summary="Publish dead-lettered messages back to where they came from (admin scope)",
    openapi_extra={"requestBody": json_body(ReplayIn, required=False)},
)
async def replay_dead_letters(state: State, _: Admin, body: JsonObject) -> dict[str, Any]:
    """What ``nazar dlq replay`` does: each message of the queue goes back to
    the exchange it was dead-lettered from (for failed notifications: to the
    channel that failed, and delivered only if still undelivered)."""
    wanted = validated(ReplayIn, body, "replay request")
    if wanted.queue not in deadletters.DEAD_LETTER_QUEUES:
        raise InvalidInputError(
            f"queue must be one of {', '.join(deadletters.DEAD_LETTER_QUEUES)}"
        )
    try:
        moved = await _broker_call(
            state, deadletters.replay(state.broker, wanted.queue, wanted.limit)
        )
    except ValueError as exc:
        raise ConflictError(f"a message in {wanted.queue} cannot be replayed: {exc}") from None
    left = await _broker_call(state, deadletters.depths(state.broker, (wanted.queue,)))
    return {"queue": wanted.queue, "replayed": moved, "remaining": left[wanted.queue]}


# ---------------------------------------------------------------- test notification


@router.post(
    "/api/v1/channels/{name}/test",
    tags=["channels"],
    summary="Send a test notification through a channel",
)
async def test_channel(name: Name, request: Request, state: State, _: Admin) -> dict[str, Any]:
    if await state.pool.fetchval("SELECT 1 FROM channels WHERE name = $1", name) is None:
        raise NotFoundError(f"no channel named {name!r}")
    url = state.settings.notifier_url.rstrip("/") + f"/internal/v1/channels/{name}/test"
    headers = {k: v for k, v in request.headers.items() if k in ("traceparent", "tracestate")}
    try:
        async with httpx.AsyncClient(timeout=60.0) as client:
            response = await client.post(url, headers=headers)
    except httpx.HTTPError as exc:
        raise TransientError(
            f"the notifier is unreachable ({type(exc).__name__})", retry_after=10
        ) from None
    if response.status_code == 404:
        raise NotFoundError(f"the notifier does not know channel {name!r} yet")
    if response.status_code != 200:
        raise TransientError(f"the notifier answered {response.status_code}", retry_after=10)
    result: dict[str, Any] = response.json()
    return result
