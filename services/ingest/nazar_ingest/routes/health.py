"""Health, readiness and Prometheus metrics (no authentication)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from nazar_ingest.deps import AppState, get_state

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process serves requests."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "Not ready: `checks` says what is missing",
                     "content": {"application/json": {}}}},
)
async def readyz(state: Annotated[AppState, Depends(get_state)]) -> JSONResponse:
    """Readiness: database migrated and reachable, broker connected, the
    deferred-queue consumer attached.

    Answers 200 when ingest can make data durable (it can with either
    dependency alone) and lists each dependency's state; 503 with neither,
    and 503 while the broker is connected but the deferred-queue consumer is
    missing (``consumer:nazar.ingest.deferred``)."""
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(state.pool.fetchval("SELECT 1"), 2.0)
        checks["database"] = "ok" if state.backend is not None else "migrating"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    checks.update(state.runtime.checks())
    missing = any(v == "missing" for k, v in checks.items() if k.startswith("consumer:"))
    ok = (checks["database"] == "ok" or checks["broker"] == "ok") and not missing
    status = "ok" if all(v == "ok" for v in checks.values()) else ("degraded" if ok else "down")
    return JSONResponse({"status": status, "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
