"""Events: deploys, configuration changes, incidents (``/api/v1/events``).

CI pipelines record deploys with an ``ingest`` key (``nazar events deploy``),
charts draw them as markers, and the analyzer relates alerts to them
(``deploys`` in a rule). SQL lives in :mod:`nazar_common.db.events`.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from nazar_common.auth import Scope
from nazar_common.db import events as store
from nazar_common.errors import InvalidInputError, NotFoundError
from nazar_common.schemas.events import KIND_PATTERN, MAX_EVENT_BYTES, EventIn, pg_text
from nazar_common.schemas.names import HOST_RE
from nazar_ingest.deps import (
    AppState,
    connection,
    get_state,
    read_body,
    require,
    require_json_media,
)
from nazar_ingest.jsonbody import load_json
from nazar_ingest.openapi import json_body
from nazar_ingest.problems import invalid_input
from nazar_ingest.routes.query import parse_labels
from nazar_ingest.security import Principal
from nazar_ingest.timeparse import parse_time, to_datetime

router = APIRouter(tags=["events"])
State = Annotated[AppState, Depends(get_state)]
Reader = Annotated[Principal, Depends(require(Scope.READ))]
Writer = Annotated[Principal, Depends(require(Scope.INGEST))]
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]
EventId = Annotated[int, Path(ge=1, le=2**63 - 1)]

#: Range of ``GET /api/v1/events`` without ``start``.
DEFAULT_RANGE = 7 * 86400.0
MAX_LIMIT = 10_000
_KIND_RE = re.compile(KIND_PATTERN)

_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "kind": {"type": "string"},
        "title": {"type": "string"},
        "service": {"type": ["string", "null"]},
        "version": {"type": ["string", "null"]},
        "hosts": {"type": "array", "items": {"type": "string"}},
        "selector": {"type": "object", "additionalProperties": {"type": "string"}},
        "start": {"type": "string", "format": "date-time"},
        "end": {"type": ["string", "null"], "format": "date-time"},
        "link": {"type": ["string", "null"]},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
_ONE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"schema": _EVENT_SCHEMA}}}
}
_MANY: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"schema": {"type": "array", "items": _EVENT_SCHEMA}}}}
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid body or parameters (problem+json naming the fields)"},
    401: {"description": "Missing or invalid API key"},
    403: {"description": "The key lacks the scope"},
}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _labels(values: list[str] | None) -> dict[str, str]:
    labels = parse_labels(values, "label")
    for name, value in labels.items():
        try:
            pg_text(value)
        except ValueError as exc:
            raise InvalidInputError(f"label {name}: {exc}") from None
    return labels


def parse_event(body: bytes) -> EventIn:
    """The event in a request body; every invalid field is reported at once."""
    raw = load_json(body)
    if not isinstance(raw, dict):
        raise InvalidInputError("body must be a JSON object")
    try:
        return EventIn.model_validate(raw)
    except ValidationError as exc:
        raise invalid_input(exc, "event") from exc


@router.post(
    "/api/v1/events",
    status_code=201,
    summary="Record an event (deploy, config, incident, ...)",
    openapi_extra={"requestBody": json_body(EventIn)},
    responses={
        201: {"content": {"application/json": {"schema": _EVENT_SCHEMA}}},
        **_ERRORS,
        413: {"description": "Body over 64 KiB"},
    },
)
async def create_event(request: Request, state: State, principal: Writer) -> Response:
    """Scope ``ingest`` (or ``admin``). Answers ``201`` with the stored event
    and its URL in ``Location``."""
    require_json_media(request.headers.get("content-type"))
    event = parse_event(await read_body(request, MAX_EVENT_BYTES))
    async with connection(state) as conn:
        stored = await store.insert_event(conn, event, principal.name or principal.key_id)
    return _json(stored.out(), 201, {"Location": f"/api/v1/events/{stored.id}"})


@router.get(
    "/api/v1/events",
    summary="Events overlapping a time range, newest first",
    responses={**_MANY, **_ERRORS},
)
async def list_events(
    state: State,
    _: Reader,
    start: Annotated[
        str | None,
        Query(description="Unix seconds, RFC 3339 or now-<duration>; default end - 7d."),
    ] = None,
    end: Annotated[str | None, Query(description="As start; default now.")] = None,
    kind: Annotated[
        list[str] | None, Query(description="Only these kinds (repeatable).")
    ] = None,
    host: Annotated[
        str | None,
        Query(description="Only events touching this host: naming it, with a selector "
              "matching its labels, or fleet-wide."),
    ] = None,
    label: Annotated[
        list[str] | None,
        Query(description="Event labels that must all be equal: k=v (repeatable)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1000,
) -> Response:
    now = time.time()
    t_end = parse_time(end, now, "end") if end is not None else now
    t_start = parse_time(start, now, "start") if start is not None else t_end - DEFAULT_RANGE
    if t_start > t_end:
        raise InvalidInputError("start must not be after end")
    kinds = [k.strip() for k in kind or [] if k.strip()]
    for k in kinds:
        if not _KIND_RE.match(k):
            raise InvalidInputError(f"kind {k[:70]!r} is not an event kind")
    host = host or None
    if host is not None and not HOST_RE.match(host):
        raise InvalidInputError(f"host {host[:70]!r} is not a valid host name")
    found = store.EventFilter(
        start=to_datetime(t_start),
        end=to_datetime(t_end),
        kinds=kinds,
        host=host,
        labels=_labels(label),
        limit=limit,
    )
    async with connection(state) as conn:
        events = await store.list_events(conn, found)
    return _json([e.out() for e in events])


@router.get(
    "/api/v1/events/{event_id}",
    summary="One event",
    responses={**_ONE, **_ERRORS, 404: {"description": "No such event"}},
)
async def get_event(event_id: EventId, state: State, _: Reader) -> Response:
    async with connection(state) as conn:
        event = await store.get_event(conn, event_id)
    if event is None:
        raise NotFoundError(f"no event {event_id}")
    return _json(event.out())


@router.delete(
    "/api/v1/events/{event_id}",
    status_code=204,
    summary="Delete an event",
    responses={**_ERRORS, 404: {"description": "No such event"}},
)
async def delete_event(event_id: EventId, state: State, _: Admin) -> Response:
    async with connection(state) as conn:
        if not await store.delete_event(conn, event_id):
            raise NotFoundError(f"no event {event_id}")
    return Response(status_code=204)
