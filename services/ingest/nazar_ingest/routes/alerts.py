"""Alerts: listing, one alert with its transitions, acknowledgement, and rule
backtests (forwarded to the analyzer's internal endpoint).

Alerts are written by the analyzer; this API only reads them, except for the
acknowledgement, which needs the ``admin`` scope: it changes shared state that
notification policies act on, while ``read`` keys are handed to dashboards.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import httpx
import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from nazar_common.auth import Scope
from nazar_common.errors import NotFoundError, TransientError
from nazar_common.schemas.storable import MAX_BIGINT, BigInt, Text
from nazar_ingest import problems, store
from nazar_ingest.deps import AppState, JsonObject, get_state, require, validated
from nazar_ingest.openapi import json_body
from nazar_ingest.routes.query import LabelFilter, parse_labels

router = APIRouter(tags=["alerts"])
Reader = Annotated[object, Depends(require(Scope.READ))]
Admin = Annotated[object, Depends(require(Scope.ADMIN))]
State = Annotated[AppState, Depends(get_state)]

AlertStateName = Literal["pending", "firing", "nodata", "resolved", "normal", "open"]

def _alert(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in ("labels", "annotations"):
            out[key] = orjson.loads(value)
        elif isinstance(value, datetime):
            out[key] = value.isoformat()
        else:
            out[key] = value
    out["expected"] = {
        "low": out.pop("expected_low"),
        "high": out.pop("expected_high"),
        "centre": out.pop("expected_centre"),
    }
    return out


@router.get("/api/v1/alerts", summary="List alerts, newest first")
async def list_alerts(
    state: State,
    _: Reader,
    alert_state: Annotated[
        list[AlertStateName] | None,
        Query(alias="state", description="Repeatable; 'open' = pending, firing or nodata."),
    ] = None,
    host: Annotated[str | None, Query()] = None,
    rule: Annotated[str | None, Query(description="Rule name.")] = None,
    severity: Annotated[list[str] | None, Query(description="Repeatable (any of).")] = None,
    kind: Annotated[
        str | None, Query(description="Rule kind: threshold, baseline, anomaly, absence.")
    ] = None,
    label: LabelFilter = None,
    acked: Annotated[
        bool | None, Query(description="true: acknowledged only; false: unacknowledged only.")
    ] = None,
    since: Annotated[datetime | None, Query(description="Alerts active at or after this.")] = None,
    until: Annotated[datetime | None, Query(description="Alerts started before this.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[BigInt | None, Query(description="Pagination: ids below this.")] = None,
) -> dict[str, Any]:
    states: list[str] | None = None
    if alert_state:
        states = sorted(
            {s for x in alert_state for s in (("pending", "firing", "nodata") if x == "open"
                                               else (x,))}
        )
    rows = await store.list_alerts(
        state.pool,
        store.AlertFilter(
            states=states,
            host=host or None,
            rule=rule or None,
            severity=[s for s in severity or [] if s] or None,
            kind=kind or None,
            labels=parse_labels(label, "label") or None,
            acked=acked,
            since=since,
            until=until,
            before_id=before_id,
            limit=limit,
        ),
    )
    items = [_alert(r) for r in rows]
    return {
        "items": items,
        "next_before_id": items[-1]["id"] if len(items) == limit else None,
    }


@router.get("/api/v1/alerts/{alert_id}", summary="One alert with its transitions")
async def get_alert(
    alert_id: Annotated[int, Path(ge=1, le=MAX_BIGINT)], state: State, _: Reader
) -> Any:
    row = await state.pool.fetchrow(
        f"SELECT {store.ALERT_COLUMNS} FROM alerts WHERE id = $1", alert_id
    )
    if row is None:
        raise NotFoundError(f"no alert {alert_id}")
    out = _alert(row)
    transitions = await state.pool.fetch(
        "SELECT seq, event_id, from_state, to_state, at, value, expected_low, expected_high, "
        "expected_centre, score, explanation FROM alert_transitions WHERE alert_id = $1 "
        "ORDER BY seq",
        alert_id,
    )
    out["transitions"] = [
        {
            "seq": t["seq"],
            "event_id": str(t["event_id"]),
            "from": t["from_state"],
            "to": t["to_state"],
            "at": t["at"].isoformat(),
            "value": t["value"],
            "expected": {"low": t["expected_low"], "high": t["expected_high"],
                         "centre": t["expected_centre"]},
            "score": t["score"],
            "explanation": t["explanation"],
        }
        for t in transitions
    ]
    return out


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: Text = Field(default="", max_length=1000)


@router.post(
    "/api/v1/alerts/{alert_id}/ack",
    summary="Acknowledge an alert (admin scope)",
    openapi_extra={"requestBody": json_body(AckIn, required=False)},
)
async def ack_alert(
    alert_id: Annotated[int, Path(ge=1, le=MAX_BIGINT)],
    request: Request,
    state: State,
    _: Admin,
    raw: JsonObject,
) -> Any:
    body = validated(AckIn, raw, "acknowledgement")
    principal = getattr(request.state, "principal", None)
    who = getattr(principal, "name", "") or getattr(principal, "key_id", "")
    row = await state.pool.fetchrow(
        "UPDATE alerts SET acked_at = coalesce(acked_at, now()), "
        "acked_by = coalesce(acked_by, $2), "
        "ack_comment = coalesce(nullif($3, ''), ack_comment) WHERE id = $1 "
        f"RETURNING {store.ALERT_COLUMNS}",
        alert_id,
        who,
        body.comment,
    )
    if row is None:
        raise NotFoundError(f"no alert {alert_id}")
    return _alert(row)


@router.post(
    "/api/v1/rules/backtest",
    tags=["rules"],
    summary="Evaluate a rule over stored history (nothing is stored)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def backtest(state: State, _: Reader, body: JsonObject) -> Any:
    """Body: ``{"rule": <rule spec>, "start": ..., "end": ..., "resolution": "auto"}``.
    Answers the transitions the rule would have produced."""
    return await ask_analyzer(state, "/backtest", body, "Backtest failed", "backtest-failed")


async def ask_analyzer(
    state: AppState, path: str, body: dict[str, Any], failed: str, code: str
) -> Any:
    """The analyzer's answer to ``POST path`` (its internal endpoint): its
    problem+json as it is, 503 while it is unreachable or failing."""
    url = state.settings.analyzer_url.rstrip("/") + path
    try:
        async with httpx.AsyncClient(timeout=120.0) as client:
            r = await client.post(url, json=body)
    except httpx.HTTPError as exc:
        raise TransientError(
            f"the analyzer is unreachable: {type(exc).__name__}", retry_after=10
        ) from exc
    try:
        payload = r.json()
    except ValueError:
        payload = None
    if r.status_code >= 500 and not isinstance(payload, dict):
        raise TransientError(f"the analyzer failed with HTTP {r.status_code}", retry_after=10)
    if r.status_code >= 400:
        if isinstance(payload, dict) and "title" in payload:
            return JSONResponse(payload, status_code=r.status_code,
                                media_type=problems.MEDIA_TYPE)
        return problems.problem(r.status_code, failed, str(payload)[:500], code)
    return payload
