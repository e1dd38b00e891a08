"""Service level objectives (``/api/v1/slos``): CRUD, with each SLO's state.

``GET`` answers every SLO with its current state over its rolling window:
the SLI, whether the objective is met, the error budget left (1 = untouched,
0 = spent, below 0 = overspent) and burn rates over the windows that
multi-window alerts use (``burn_rate`` rules). Writes need the admin scope and
work as for rules: ``PUT`` creates or replaces, ``POST`` creates (409 if the
name exists). SQL lives in :mod:`nazar_common.db.slo`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from nazar_common.auth import Scope
from nazar_common.db import slo as store
from nazar_common.errors import InvalidInputError
from nazar_common.schemas.slo import SLOSpec, status
from nazar_ingest.deps import AppState, JsonObject, connection, get_state, require
from nazar_ingest.openapi import json_body
from nazar_ingest.routes.config import Name, _Resource
from nazar_ingest.security import Principal

router = APIRouter(tags=["slos"])
State = Annotated[AppState, Depends(get_state)]
Reader = Annotated[Principal, Depends(require(Scope.READ))]
Admin = Annotated[object, Depends(require(Scope.ADMIN))]

SLOS = _Resource("slos", SLOSpec)
#: Windows whose burn rates every SLO shows (those of the default burn_rate pairs).
BURN_WINDOWS: dict[str, float] = {"5m": 300.0, "30m": 1800.0, "1h": 3600.0, "6h": 21600.0}


class ReportTooLargeError(InvalidInputError):
    """A measurement ran past ``NAZAR_REPORT_TIMEOUT``."""

    status = 422


@contextlib.asynccontextmanager
async def bounded(state: AppState) -> AsyncIterator[asyncpg.Connection]:
    """A read-only connection whose statements stop after ``report_timeout``:
    a report over too much data is refused instead of holding the connection."""
    timeout = state.settings.report_timeout
    async with connection(state) as conn:
        try:
            async with conn.transaction(readonly=True):
                await conn.execute(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
                yield conn
        except asyncpg.QueryCanceledError:
            raise ReportTooLargeError(
                f"the measurement did not finish within {timeout:g} s "
                "(NAZAR_REPORT_TIMEOUT): ask for a shorter period or fewer hosts"
            ) from None


def raw_from(state: AppState, now: float) -> float:
    """Raw samples are read from here on, 1-minute rollups before."""
    return now - state.settings.retention_raw.total_seconds()


async def slo_state(
    conn: asyncpg.Connection, spec: SLOSpec, start: float, end: float, cut: float,
    burn: dict[str, float] | None = None,
) -> dict[str, Any]:
    """An SLO's state over ``[start, end)`` and its burn rates over the windows
    ending at ``end``."""
    windows = burn or {}
    found = await store.measure(conn, spec, [start, *(end - w for w in windows.values())],
                                end, cut)
    return {"start": start, "end": end,
            **status(spec, found[0], dict(zip(windows, found[1:], strict=True)))}


async def _with_state(state: AppState, body: dict[str, Any]) -> dict[str, Any]:
    spec = SLOSpec.model_validate(body["spec"])
    now = time.time()
    async with bounded(state) as conn:
        body["status"] = await slo_state(conn, spec, now - spec.window, now,
                                         raw_from(state, now), BURN_WINDOWS)
    return body


@router.get("/api/v1/slos", summary="List SLOs with their error budgets")
async def list_slos(
    state: State, reader: Reader,
    with_status: Annotated[
        bool, Query(alias="status", description="Measure each SLO (false: specs only).")
    ] = True,
) -> Any:
    items = await SLOS.list(state.pool, reader)
    if with_status:
        items = [await _with_state(state, item) for item in items]
    return items


@router.get("/api/v1/slos/{name}", summary="One SLO with its error budget")
async def get_slo(name: Name, state: State, reader: Reader) -> Any:
    return await _with_state(state, await SLOS.get(state.pool, name, reader))


@router.post(
    "/api/v1/slos", status_code=201, summary="Create an SLO",
    openapi_extra={"requestBody": json_body(SLOSpec)},
    responses={409: {"description": "The name exists; use PUT to replace"}},
)
async def create_slo(state: State, _: Admin, body: JsonObject) -> Any:
    return await SLOS.create(state.pool, body)


@router.put(
    "/api/v1/slos/{name}", summary="Create or replace an SLO",
    openapi_extra={"requestBody": json_body(SLOSpec)},
    responses={201: {"description": "Created", "content": {"application/json": {}}}},
)
async def put_slo(name: Name, state: State, _: Admin, body: JsonObject) -> Any:
    out, created = await SLOS.put(state.pool, name, body)
    return JSONResponse(out, status_code=201 if created else 200)


@router.delete("/api/v1/slos/{name}", status_code=204, summary="Delete an SLO")
async def delete_slo(name: Name, state: State, _: Admin) -> None:
    await SLOS.delete(state.pool, name)
