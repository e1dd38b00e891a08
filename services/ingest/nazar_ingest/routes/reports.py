"""Reports (read scope): availability per host and group, and the monthly
report as JSON or as a printable HTML page.

Availability comes from presence: a host is down while it sends no sample
for longer than ``gap`` (the condition a host absence rule with ``after =
gap`` fires on), from its last sample before the silence to its first after.
Pure assembly lives in :mod:`nazar_ingest.reporting`, SQL in
:mod:`nazar_common.db.slo` and :mod:`nazar_ingest.store`.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import asyncpg
import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response

from nazar_common.auth import Scope
from nazar_common.db import slo as slo_store
from nazar_common.errors import InvalidInputError
from nazar_common.schemas.names import HOST_RE
from nazar_common.schemas.slo import DEFAULT_GAP
from nazar_ingest import reporting, store
from nazar_ingest.deps import AppState, get_state, require
from nazar_ingest.reporting import GroupBy
from nazar_ingest.routes.slos import SLOS, bounded, raw_from, slo_state
from nazar_ingest.security import Principal
from nazar_ingest.timeparse import parse_duration, parse_time, to_datetime

router = APIRouter(tags=["reports"])
State = Annotated[AppState, Depends(get_state)]
Reader = Annotated[Principal, Depends(require(Scope.READ))]

#: Longest report period: the 1-minute rollups' default retention... and then some.
MAX_PERIOD = 400 * 86400.0
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid parameters (problem+json)"},
    422: {"description": "The report ran past NAZAR_REPORT_TIMEOUT: ask for less"},
    401: {"description": "Missing or invalid API key"},
    403: {"description": "The key lacks the read scope"},
}
GroupByParam = Annotated[
    str | None,
    Query(description="label:<host label> groups hosts by that label's value (e.g. "
          "label:role); default: one group of every host."),
]


def _gap(raw: str | None) -> float:
    gap = DEFAULT_GAP if raw is None else parse_duration(raw, "gap")
    if not 1 <= gap <= 86400:
        raise InvalidInputError("gap must be between 1s and 1d")
    return gap


async def availability_body(
    conn: asyncpg.Connection, state: AppState, start: float, end: float, gap: float,
    group_by: GroupBy, hosts: list[str] | None, max_outages: int,
) -> list[dict[str, Any]]:
    now = time.time()
    found = await slo_store.hosts_in(conn, start, hosts=hosts)
    avail = await slo_store.host_availability(conn, found, start, end, gap, raw_from(state, now))
    return reporting.availability_groups(
        group_by, ((h.host, h.labels, avail[h.host]) for h in found), max_outages
    )


@router.get(
    "/api/v1/reports/availability",
    summary="Uptime, outages, longest outage and MTTR per host and host group",
    responses=_ERRORS,
)
async def availability(
    state: State,
    _: Reader,
    period: Annotated[
        str | None, Query(description="Length of the period ending at end (default 30d).")
    ] = None,
    start: Annotated[
        str | None, Query(description="Start (Unix seconds, RFC 3339, now-<duration>); "
                          "instead of period.")
    ] = None,
    end: Annotated[str | None, Query(description="End of the period; default now.")] = None,
    group_by: GroupByParam = None,
    host: Annotated[list[str] | None, Query(description="Only these hosts (repeatable).")] = None,
    gap: Annotated[
        str | None, Query(description="Silence after which a host is down (default 5m).")
    ] = None,
    outages: Annotated[
        int, Query(ge=0, le=1000, description="Newest outages listed per host.")
    ] = 20,
) -> Response:
    now = time.time()
    t_end = parse_time(end, now, "end") if end is not None else now
    if start is not None and period is not None:
        raise InvalidInputError("give period or start, not both")
    if start is not None:
        t_start = parse_time(start, now, "start")
    else:
        t_start = t_end - (30 * 86400.0 if period is None else parse_duration(period, "period"))
    if t_start >= t_end:
        raise InvalidInputError("the period must end after it starts")
    if t_end - t_start > MAX_PERIOD:
        raise InvalidInputError("the period must not exceed 400 days")
    t_end = min(t_end, now)  # the future is not monitored yet
    for h in host or []:
        if not HOST_RE.match(h):
            raise InvalidInputError(f"host {h[:70]!r} is not a valid host name")
    g, by = _gap(gap), GroupBy.parse(group_by)
    async with bounded(state) as conn:
        groups = await availability_body(conn, state, t_start, max(t_end, t_start), g, by,
                                         host or None, outages)
    body = {"start": t_start, "end": t_end, "gap": g, "group_by": by.out(),
            "raw_from": raw_from(state, now), "groups": groups}
    return Response(orjson.dumps(body), media_type="application/json")


async def monthly_report(
    state: AppState, reader: Principal, month: str | None, group_by: str | None,
    gap: str | None,
) -> dict[str, Any]:
    now = time.time()
    name, start, end = reporting.month_range(month, now)
    if start >= now:
        raise InvalidInputError(f"month {name} has not started yet")
    end_ = min(end, now)
    by, g = GroupBy.parse(group_by), _gap(gap)
    slos = await SLOS.list(state.pool, reader)
    async with bounded(state) as conn:
        groups = await availability_body(conn, state, start, end_, g, by, None, 0)
        measured = []
        for item in slos:
            spec = SLOS.model.model_validate(item["spec"])
            st = await slo_state(conn, spec, start, end_, raw_from(state, now))
            measured.append({"name": item["name"], "objective": spec.objective,
                             "selector": spec.selector.match_labels,
                             **{k: v for k, v in st.items() if k not in ("start", "end")}})
        alerts = await store.alert_counts(conn, to_datetime(start), to_datetime(end_), by.label)
        acks = await store.ack_times(conn, to_datetime(start), to_datetime(end_), by.label)
    return reporting.monthly(name, start, end_, by, groups, measured, alerts, acks)


_MONTH = Annotated[
    str | None, Query(description="YYYY-MM (UTC); default: the previous month.")
]


@router.get(
    "/api/v1/reports/monthly",
    summary="Monthly report per group: availability, SLOs, alerts, time to acknowledge",
    responses=_ERRORS,
)
async def monthly(
    state: State, reader: Reader, month: _MONTH = None, group_by: GroupByParam = None,
    gap: Annotated[str | None, Query(description="Silence that counts as down.")] = None,
) -> Response:
    body = await monthly_report(state, reader, month, group_by, gap)
    return Response(orjson.dumps(body), media_type="application/json")


@router.get(
    "/api/v1/reports/monthly.html",
    summary="The monthly report as a printable HTML page",
    response_class=HTMLResponse,
    responses=_ERRORS,
)
async def monthly_html(
    state: State, reader: Reader, month: _MONTH = None, group_by: GroupByParam = None,
    gap: Annotated[str | None, Query(description="Silence that counts as down.")] = None,
) -> HTMLResponse:
    body = await monthly_report(state, reader, month, group_by, gap)
    return HTMLResponse(reporting.render_html(body))
