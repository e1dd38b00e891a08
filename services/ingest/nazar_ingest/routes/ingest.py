"""``POST /api/v1/metrics``: the native JSON ingest endpoint."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel, Field

from nazar_common.auth import Scope
from nazar_common.errors import InvalidInputError, TransientError, UnsupportedMediaTypeError
from nazar_ingest.deps import AppState, get_state, read_body, require
from nazar_ingest.samples import BatchBuilder, Limits, NormalizedBatch, parse_json_payload

router = APIRouter(tags=["ingest"])

REQUESTS = Counter(
    "nazar_ingest_requests_total",
    "Ingest requests by protocol and outcome",
    ["protocol", "outcome"],
)
SAMPLES = Counter("nazar_ingest_samples_total", "Samples accepted", ["protocol", "store"])


class SampleIn(BaseModel):
    metric: str = Field(examples=["cpu.usage_percent"])
    value: float
    timestamp: float | str | None = Field(
        default=None, description="RFC 3339 with a zone, or Unix seconds; default now."
    )
    labels: dict[str, str] = Field(default_factory=dict)
    host: str | None = Field(default=None, description="Overrides the batch's host.")


class MetricsIn(BaseModel):
    """Documents the body; parsing uses a faster path with the same rules."""

    host: str | None = Field(default=None, examples=["web-1"])
    labels: dict[str, str] = Field(default_factory=dict, examples=[{"env": "prod"}])
    samples: list[SampleIn]


class Accepted(BaseModel):
    accepted: int
    duplicate: bool = False


def limits_for(state: AppState, now: float) -> Limits:
    s = state.settings
    return Limits(
        max_samples=s.max_samples_per_request,
        oldest=now - s.accept_past.total_seconds(),
        newest=now + s.accept_future.total_seconds(),
    )


async def accept(state: AppState, batch: NormalizedBatch, protocol: str) -> tuple[int, bool]:
    """Make ``batch`` durable; returns (samples accepted, was a duplicate)."""
    if state.accepter is None:
        raise TransientError("ingest is starting up", retry_after=2)
    try:
        result = await state.accepter.accept(batch)
    except TransientError:
        REQUESTS.labels(protocol, "unavailable").inc()
        raise
    REQUESTS.labels(protocol, "accepted").inc()
    SAMPLES.labels(protocol, result.store).inc(result.accepted)
    return result.accepted, result.store == "duplicate"


@router.post(
    "/api/v1/metrics",
    status_code=202,
    response_model=Accepted,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": MetricsIn.model_json_schema()}},
        }
    },
    responses={
        400: {"description": "Invalid payload (problem+json, lists the fields)"},
        401: {"description": "Missing or invalid API key"},
        403: {"description": "The key lacks the ingest scope"},
        413: {"description": "Too many samples or bytes"},
        503: {"description": "Storage and broker both unavailable; retry after Retry-After"},
    },
)
async def ingest_metrics(
    request: Request,
    state: Annotated[AppState, Depends(get_state)],
    _: Annotated[object, Depends(require(Scope.INGEST))],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Accept a batch of samples. 202 means the samples are durable."""
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if "protobuf" in ctype or ctype.startswith("text/plain; version"):
        raise UnsupportedMediaTypeError(
            f"Content-Type {ctype!r} is not supported here; this endpoint takes JSON"
        )
    body = await read_body(request, state.settings.max_request_bytes)
    now = time.time()
    try:
        batch = parse_json_payload(body, BatchBuilder(limits_for(state, now)), now)
    except InvalidInputError:
        REQUESTS.labels("json", "invalid").inc()
        raise
    batch.idempotency_key = idempotency_key
    accepted, duplicate = await accept(state, batch, "json")
    return JSONResponse({"accepted": accepted, "duplicate": duplicate}, status_code=202)
