"""Drop-in ingestion: Prometheus remote write, OTLP/HTTP metrics, Influx line protocol.

Each endpoint decodes its protocol (``nazar_ingest.payloads``), validates with
the same :class:`~nazar_ingest.samples.BatchBuilder` as the JSON endpoint and
makes the batch durable through the same :func:`~nazar_ingest.routes.ingest.accept`
(so a success status means the samples are durable; 503 with Retry-After
when they cannot be made durable).

Authentication: an ingest-scoped API key as ``Authorization: Bearer <key>``,
``Authorization: Token <key>`` (Influx v2 clients), ``Authorization: Basic``
with the key as password and any user name (Prometheus ``basic_auth``, Influx
v1 clients), or the Influx v1 query parameters ``?u=<anything>&p=<key>``.

Error bodies follow what each protocol's clients understand: problem+json
for remote write; for OTLP a ``google.rpc.Status`` protobuf (protobuf
requests) or problem+json extended with ``code``/``message`` (JSON requests);
for Influx problem+json extended with Influx's ``code`` and ``message``.

Samples that can never be stored (NaN, outside the accepted time window, a
string field...) are skipped rather than failing the request; their counts by
reason are in the ``X-Nazar-Skipped`` response header and in the
``nazar_ingest_skipped_samples_total`` metric. So are, for remote write and
OTLP, the samples of new series beyond a cardinality budget (reason
``series_limit``; OTLP also counts them in ``partial_success``); the Influx
endpoints answer those with a ``422`` like the JSON endpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import Counter

from nazar_common.auth import Scope
from nazar_common.errors import (
    AuthenticationError,
    InvalidInputError,
    UnsupportedMediaTypeError,
)
from nazar_ingest.deps import AppState, get_state, read_body, read_raw_body
from nazar_ingest.openapi import Problem, schema_ref
from nazar_ingest.payloads import otlp
from nazar_ingest.payloads.influx import PRECISION_V1, PRECISION_V2, parse_line_protocol
from nazar_ingest.payloads.remote_write import decompress, parse_remote_write
from nazar_ingest.payloads.sink import SERIES_LIMIT
from nazar_ingest.payloads.wire import Status
from nazar_ingest.problems import MEDIA_TYPE, PROBLEM_BASE
from nazar_ingest.routes.ingest import REQUESTS, accept, limits_for, series_limit_error
from nazar_ingest.samples import BatchBuilder
from nazar_ingest.security import Principal

router = APIRouter(tags=["protocols"])

SKIPPED = Counter(
    "nazar_ingest_skipped_samples_total",
    "Samples dropped on purpose by a protocol endpoint",
    ["protocol", "reason"],
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed payload; nothing was written"},
    413: {"description": "Too many samples or bytes"},
    415: {"description": "Unsupported Content-Type"},
    503: {"description": "Storage and broker both unavailable; retry after Retry-After"},
}

_BINARY = {"schema": {"type": "string", "format": "binary"}}


_TEXT = {"schema": {"type": "string"}}


def _body(content: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` declaring a request body the endpoint reads itself."""
    return {"requestBody": {"required": True, "content": content}}


#: OTLP answers protobuf requests' errors with a ``google.rpc.Status`` protobuf.
_OTLP_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {
        **response,
        "content": {
            MEDIA_TYPE: {"schema": schema_ref(Problem)},
            "application/x-protobuf": _BINARY,
        },
    }
    for status, response in _ERRORS.items()
    if status in (400, 413)
}


def _authorization(request: Request) -> str | None:
    """The request's credentials as an ``Authorization`` value KeyStore understands."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "basic":
            return header
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthenticationError("malformed Basic credentials") from exc
        return "Bearer " + decoded.partition(":")[2]
    key = request.query_params.get("p")
    return f"Bearer {key}" if key else None


async def ingest_principal(
    request: Request, state: Annotated[AppState, Depends(get_state)]
) -> Principal:
    """Dependency: an ingest-scoped key by any of the schemes these protocols use."""
    principal = await state.keys.authenticate(_authorization(request), Scope.INGEST)
    request.state.principal = principal
    return principal


def aliases_enabled(state: AppState) -> bool:
    """``NAZAR_INGEST_ALIASES``: also store agent names for known gauges."""
    return state.settings.ingest_aliases


def _content_type(request: Request, default: str) -> str:
    return request.headers.get("content-type", default).split(";")[0].strip().lower()


def _skipped_headers(protocol: str, skipped: dict[str, int]) -> dict[str, str]:
    if not skipped:
        return {}
    for reason, count in skipped.items():
        SKIPPED.labels(protocol, reason).inc(count)
    return {"X-Nazar-Skipped": ", ".join(f"{r}={n}" for r, n in sorted(skipped.items()))}


def _body_key(prefix: str, *parts: bytes) -> str:
    """An idempotency key from the payload: a retried request is stored once."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
        digest.update(b"\0")
    return f"{prefix}:{digest.hexdigest()}"


def _problem(exc: InvalidInputError, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + exc.code, "title": exc.title, "status": exc.status,
        "detail": exc.detail,
    }
    body.update(exc.extra)
    body.update(extra)
    return body


def _full_message(exc: InvalidInputError) -> str:
    """The detail plus the first listed errors (clients often show only one string)."""
    errors: list[dict[str, str]] = exc.extra.get("errors") or []
    if not errors:
        return str(exc.detail)
    listed = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5])
    return f"{exc.detail}: {listed}"


# --- Prometheus remote write 1.0 -----------------------------------------------------------


@router.post(
    "/api/v1/write",
    status_code=204,
    responses=_ERRORS,
    openapi_extra=_body({"application/x-protobuf": _BINARY}),
)
async def prometheus_remote_write(
    request: Request,
    state: Annotated[AppState, Depends(get_state)],
    _: Annotated[Principal, Depends(ingest_principal)],
) -> Response:
    """Prometheus remote write 1.0 (snappy-compressed ``prometheus.WriteRequest``).

    204: stored (samples that can never be stored are skipped and counted in
    ``X-Nazar-Skipped``); 400: undecodable, do not retry; 503: retry later."""
    ctype = _content_type(request, "application/x-protobuf")
    if ctype != "application/x-protobuf" or "io.prometheus.write.v2" in request.headers.get(
        "content-type", ""
    ):
        raise UnsupportedMediaTypeError(
            "send remote write 1.0: Content-Type application/x-protobuf "
            "(prometheus.WriteRequest)"
        )
    encoding = request.headers.get("content-encoding", "snappy").strip().lower()
    if encoding != "snappy":
        raise InvalidInputError(f"Content-Encoding must be snappy, not {encoding!r}")
    limit = state.settings.max_request_bytes
    try:
        data = decompress(await read_raw_body(request, limit), limit)
        builder = BatchBuilder(limits_for(state, time.time()))
        batch = parse_remote_write(data, builder, aliases=aliases_enabled(state))
    except InvalidInputError:
        REQUESTS.labels("remote_write", "invalid").inc()
        raise
    batch.idempotency_key = _body_key("prw", data)
    result = await accept(state, batch, "remote_write")
    if result.rejected is not None:
        builder.skip(SERIES_LIMIT, result.rejected.samples)
    return Response(status_code=204, headers=_skipped_headers("remote_write", builder.skipped))


# --- OTLP/HTTP metrics ---------------------------------------------------------------------

_OTLP_TYPES = ("application/x-protobuf", "application/json")


def _otlp_error(exc: InvalidInputError, ctype: str) -> Response:
    message = _full_message(exc)
    if ctype == "application/x-protobuf":
        body = Status(code=3, message=message).SerializeToString()  # 3: INVALID_ARGUMENT
        return Response(body, status_code=exc.status, media_type=ctype)
    return JSONResponse(
        _problem(exc, code=3, message=message), status_code=exc.status, media_type=MEDIA_TYPE
    )


@router.post(
    "/v1/metrics",
    responses={
        200: {
            "description": "An ExportMetricsServiceResponse, in the request's encoding",
            "content": {
                "application/x-protobuf": _BINARY,
                "application/json": {"schema": {"type": "object"}},
            },
        },
        **_ERRORS,
        **_OTLP_ERRORS,
    },
    openapi_extra=_body(
        {"application/x-protobuf": _BINARY, "application/json": {"schema": {"type": "object"}}}
    ),
)
async def otlp_metrics(
    request: Request,
    state: Annotated[AppState, Depends(get_state)],
    _: Annotated[Principal, Depends(ingest_principal)],
) -> Response:
    """OTLP/HTTP metrics export, protobuf or JSON, optionally gzip-compressed.

    200 with an ``ExportMetricsServiceResponse`` (``partial_success`` lists
    rejected points); 400 with a ``google.rpc.Status`` if undecodable."""
    ctype = _content_type(request, "application/x-protobuf")
    if ctype not in _OTLP_TYPES:
        raise UnsupportedMediaTypeError(
            "Content-Type must be application/x-protobuf or application/json"
        )
    try:
        body = await read_body(request, state.settings.max_request_bytes)
        decoded = otlp.decode(body, ctype)
        now = time.time()
        result = otlp.parse_otlp(
            decoded, BatchBuilder(limits_for(state, now)), now, aliases=aliases_enabled(state)
        )
    except InvalidInputError as exc:
        REQUESTS.labels("otlp", "invalid").inc()
        return _otlp_error(exc, ctype)
    if result.timestamped:
        result.batch.idempotency_key = _body_key("otlp", ctype.encode(), body)
    accepted = await accept(state, result.batch, "otlp")
    rejected, message = result.rejected_points, result.message
    if accepted.rejected is not None:
        lost = accepted.rejected
        rejected += lost.samples
        result.skipped[SERIES_LIMIT] = result.skipped.get(SERIES_LIMIT, 0) + lost.samples
        note = state.accepter.budget.describe(lost, accepted.accepted)
        message = f"{message}; {note}" if message else note
    return Response(
        otlp.encode_response(rejected, message, ctype),
        status_code=200,
        media_type=ctype,
        headers=_skipped_headers("otlp", result.skipped),
    )


# --- Influx line protocol ------------------------------------------------------------------


def _influx_error(exc: InvalidInputError) -> JSONResponse:
    code = {413: "request too large", 422: "unprocessable entity"}.get(exc.status, "invalid")
    return JSONResponse(
        _problem(exc, code=code, message=_full_message(exc)),
        status_code=exc.status,
        media_type=MEDIA_TYPE,
    )


async def _influx_write(
    request: Request, state: AppState, unit: float, host: str | None, protocol: str
) -> Response:
    try:
        body = await read_body(request, state.settings.max_request_bytes)
        now = time.time()
        builder = BatchBuilder(limits_for(state, now))
        batch, timestamped = parse_line_protocol(
            body, builder, unit=unit, now=now, default_host=host,
            aliases=aliases_enabled(state),
        )
    except InvalidInputError as exc:
        REQUESTS.labels(protocol, "invalid").inc()
        return _influx_error(exc)
    if timestamped:
        batch.idempotency_key = _body_key("lp", repr((unit, host)).encode(), body)
    result = await accept(state, batch, protocol)
    headers = _skipped_headers(protocol, builder.skipped)
    if result.rejected is not None:
        response = _influx_error(series_limit_error(state, result))
        response.headers.update(headers)
        return response
    return Response(status_code=204, headers=headers)


def _unit(precision: str, table: dict[str, float]) -> float:
    unit = table.get(precision)
    if unit is None:
        raise InvalidInputError(
            f"precision must be one of {', '.join(table)}, not {precision[:20]!r}"
        )
    return unit


@router.post(
    "/api/v2/write",
    status_code=204,
    responses=_ERRORS,
    openapi_extra=_body({"text/plain": _TEXT}),
)
async def influx_v2_write(
    request: Request,
    state: Annotated[AppState, Depends(get_state)],
    _: Annotated[Principal, Depends(ingest_principal)],
    org: Annotated[str | None, Query(description="Accepted and ignored.")] = None,
    bucket: Annotated[str | None, Query(description="Accepted and ignored.")] = None,
    precision: Annotated[str, Query(description="ns, us, ms or s")] = "ns",
    host: Annotated[str | None, Query(description="Host of lines without a host tag.")] = None,
) -> Response:
    """InfluxDB 2 line-protocol write (Telegraf ``outputs.influxdb_v2``, ``outputs.http``)."""
    try:
        unit = _unit(precision, PRECISION_V2)
    except InvalidInputError as exc:
        return _influx_error(exc)
    return await _influx_write(request, state, unit, host, "influx")


@router.post(
    "/write",
    status_code=204,
    responses=_ERRORS,
    openapi_extra=_body({"text/plain": _TEXT}),
)
async def influx_v1_write(
    request: Request,
    state: Annotated[AppState, Depends(get_state)],
    _: Annotated[Principal, Depends(ingest_principal)],
    db: Annotated[str | None, Query(description="Accepted and ignored.")] = None,
    precision: Annotated[str, Query(description="n, u, ms, s, m or h")] = "n",
    host: Annotated[str | None, Query(description="Host of lines without a host tag.")] = None,
) -> Response:
    """InfluxDB 1.x line-protocol write (Telegraf ``outputs.influxdb``)."""
    try:
        unit = _unit(precision, PRECISION_V1)
    except InvalidInputError as exc:
        return _influx_error(exc)
    return await _influx_write(request, state, unit, host, "influx")


@router.api_route("/ping", methods=["GET", "HEAD"], status_code=204, include_in_schema=False)
async def influx_ping() -> Response:
    """Influx clients check ``/ping`` before writing."""
    return Response(status_code=204, headers={"X-Influxdb-Version": "nazar"})
