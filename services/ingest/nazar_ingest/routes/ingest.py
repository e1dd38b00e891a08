"""``POST /api/v1/metrics``: the native JSON ingest endpoint."""

from __future__ import annotations

import hashlib
import time
from typing import Annotated, Any

from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import Route
from starlette.types import Receive, Send
from starlette.types import Scope as AsgiScope

from nazar_common.auth import Scope
from nazar_common.errors import InvalidInputError, TransientError
from nazar_common.schemas.names import (
    HOST_PATTERN,
    LABEL_NAME_PATTERN,
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS,
    METRIC_NAME_PATTERN,
)
from nazar_common.schemas.storable import Text
from nazar_ingest.deps import AppState, decode_body, receive_body, require_json_media
from nazar_ingest.openapi import json_body, schema_ref
from nazar_ingest.pipeline import AcceptResult
from nazar_ingest.samples import Limits, NormalizedBatch, parse_json

REQUESTS = Counter(
    "nazar_ingest_requests_total",
    "Ingest requests by protocol and outcome",
    ["protocol", "outcome"],
)
SAMPLES = Counter("nazar_ingest_samples_total", "Samples accepted", ["protocol", "store"])
SERIES_LIMIT_SAMPLES = Counter(
    "nazar_ingest_series_limit_samples_total",
    "Samples not stored because their new series exceeded a cardinality budget",
    ["protocol", "limit"],
)


class SeriesLimitError(InvalidInputError):
    """Some samples were refused by a cardinality budget; the others are durable."""

    status = 422
    code = "series-limit"
    title = "Series limit reached"


def series_limit_error(state: AppState, result: AcceptResult) -> SeriesLimitError:
    """The 422 of a request that lost samples to a budget (the rest was stored)."""
    rejection = result.rejected
    assert rejection is not None
    budget = state.accepter.budget
    return SeriesLimitError(
        budget.describe(rejection, result.accepted),
        limit=rejection.limit,
        limit_value=budget.limit_value(rejection.limit),
        hosts=rejection.hosts,
        accepted=result.accepted,
        rejected=rejection.samples,
        rejected_series=rejection.series,
        duplicate=result.store == "duplicate",
    )


#: Labels as the JSON endpoint takes them (see ``nazar_common.schemas.names``).
Labels = Annotated[
    dict[
        Annotated[str, Field(pattern=LABEL_NAME_PATTERN)],
        Annotated[Text, Field(max_length=MAX_LABEL_VALUE_LENGTH)],
    ],
    Field(max_length=MAX_LABELS),
]
Host = Annotated[str, Field(pattern=HOST_PATTERN)]


class SampleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str = Field(pattern=METRIC_NAME_PATTERN, examples=["cpu.usage_percent"])
    value: float = Field(description="A finite number.")
    timestamp: float | str | None = Field(
        default=None,
        description="RFC 3339 with a zone, or Unix seconds; default (or null): now. Within "
        "NAZAR_ACCEPT_PAST before and NAZAR_ACCEPT_FUTURE after the server's clock.",
    )
    labels: Labels | None = Field(
        default=None, description="Added to (and overriding) the batch's labels."
    )
    host: Host | None = Field(
        default=None, description="Overrides the batch's host; null: the batch's host."
    )


class MetricsIn(BaseModel):
    """Documents the body; parsing uses a faster path with the same rules."""

    model_config = ConfigDict(extra="forbid")

    host: Host | None = Field(
        default=None, examples=["web-1"], description="Host of the samples that name none."
    )
    labels: Labels | None = Field(
        default=None, examples=[{"env": "prod"}], description="Labels of the host and samples."
    )
    samples: list[SampleIn]


class Accepted(BaseModel):
    accepted: int = Field(description="Samples stored (after merging).")
    duplicate: bool = Field(
        default=False, description="The Idempotency-Key's request was stored before."
    )
    merged: int = Field(
        default=0,
        description="Samples dropped because a later sample of the request had the same "
        "series and timestamp (the last one is stored).",
    )


def body_digest(body: bytes) -> bytes:
    """The digest stored with a client's Idempotency-Key (of the decoded body)."""
    return hashlib.blake2b(body, digest_size=16).digest()


def limits_for(state: AppState, now: float) -> Limits:
    s = state.settings
    return Limits(
        max_samples=s.max_samples_per_request,
        oldest=now - s.accept_past.total_seconds(),
        newest=now + s.accept_future.total_seconds(),
    )


STORES = ("database", "broker", "duplicate")
#: Pre-bound counter children per protocol (``labels()`` is a lookup with a lock).
_REQUESTS_ACCEPTED: dict[str, Any] = {}


async def accept(state: AppState, batch: NormalizedBatch, protocol: str) -> AcceptResult:
    """Make ``batch`` durable (the samples of series within the cardinality
    budget); returns what was stored and what was refused."""
    if state.accepter is None:
        raise TransientError("ingest is starting up", retry_after=2)
    try:
        result = await state.accepter.accept(batch)
    except TransientError:
        REQUESTS.labels(protocol, "unavailable").inc()
        raise
    counters = _REQUESTS_ACCEPTED.get(protocol)
    if counters is None:
        counters = _REQUESTS_ACCEPTED[protocol] = (
            REQUESTS.labels(protocol, "accepted"),
            {store: SAMPLES.labels(protocol, store) for store in STORES},
        )
    counters[0].inc()
    counters[1][result.store].inc(result.accepted)
    if result.rejected is not None:
        for limit, n in result.rejected.by_limit.items():
            # samples per limit, in proportion to the series it refused
            share = result.rejected.samples * n // result.rejected.series
            SERIES_LIMIT_SAMPLES.labels(protocol, limit).inc(share)
    return result


MAX_IDEMPOTENCY_KEY = 200

def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of ``POST /api/v1/metrics``, which is served
    by :class:`IngestEndpoint` rather than a FastAPI path operation."""
    operation = {
        "tags": ["ingest"],
        "summary": "Ingest Metrics",
        "operationId": "ingest_metrics",
        "description": "Accept a batch of samples. 202 means the samples are durable.",
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY},
                "description": "A retried request with the same key is stored once.",
            }
        ],
        "requestBody": json_body(MetricsIn),
        "responses": {
            "202": {
                "description": "The samples are durable",
                "content": {"application/json": {"schema": schema_ref(Accepted)}},
            },
            "400": {"description": "Invalid payload (problem+json, lists the fields)"},
            "413": {"description": "Too many samples or bytes"},
            "415": {"description": "Not JSON (remote_write, OTLP and Influx have endpoints "
                    "of their own)"},
            "422": {
                "description": "Either the Idempotency-Key was used before for a different body "
                "(type .../idempotency-key-reused; nothing was stored; send a new key), or some "
                "samples belong to new series beyond a cardinality budget "
                "(NAZAR_SERIES_LIMIT_PER_HOST, NAZAR_SERIES_LIMIT) and were not stored; the "
                "others were stored (durable). problem+json with limit, limit_value, hosts, "
                "accepted, rejected and rejected_series. Do not retry."
            },
            "503": {"description": "Storage and broker both unavailable; retry after Retry-After"},
        },
    }
    return {"/api/v1/metrics": {"post": operation}}


class IngestEndpoint:
    """``POST /api/v1/metrics`` as a plain ASGI application.

    The busiest endpoint skips FastAPI's per-request machinery (dependency
    resolution, response models): it reads its few headers itself and
    answers with pre-serialised JSON. Errors are raised as ``NazarError`` and
    become problem+json responses in the application's exception handlers,
    like everywhere else."""

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        state: AppState = scope["app"].state.nazar
        authorization = ctype = encoding = length = idempotency_key = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-type":
                ctype = value.decode("latin-1")
            elif name == b"content-encoding":
                encoding = value.decode("latin-1")
            elif name == b"content-length":
                length = value.decode("latin-1")
            elif name == b"idempotency-key":
                idempotency_key = value.decode("latin-1")
        await state.keys.authenticate(authorization, Scope.INGEST)
        if idempotency_key is not None and len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise InvalidInputError(
                f"Idempotency-Key longer than {MAX_IDEMPOTENCY_KEY} characters"
            )
        require_json_media(ctype)
        limit = state.settings.max_request_bytes
        body = decode_body(await receive_body(receive, length, limit), encoding, limit)
        now = time.time()
        try:
            final = state.accepter.budget.frozen if state.accepter is not None else None
            batch = parse_json(body, limits_for(state, now), now, final)
        except InvalidInputError:
            REQUESTS.labels("json", "invalid").inc()
            raise
        if idempotency_key is not None:
            batch.idempotency_key = idempotency_key
            batch.body_hash = body_digest(body)
        result = await accept(state, batch, "json")
        if result.rejected is not None:
            raise series_limit_error(state, result)
        duplicate = result.store == "duplicate"
        payload = b'{"accepted":%d,"duplicate":%s,"merged":%d}' % (
            result.accepted,
            b"true" if duplicate else b"false",
            batch.merged,
        )
        await send(
            {
                "type": "http.response.start",
                "status": 202,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


route = Route("/api/v1/metrics", IngestEndpoint(), methods=["POST"], name="ingest_metrics")
