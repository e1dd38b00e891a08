"""The notifier's small HTTP surface: health, readiness, metrics, and the
internal test-notification endpoint the API calls
(``POST /internal/v1/channels/{name}/test``). It is meant for the cluster
network only: bind it to loopback or protect it with a network policy."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import FastAPI, Path, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from nazar_common.errors import NazarError
from nazar_common.schemas.config import NAME_PATTERN
from nazar_notifier.service import Notifier


def create_http_app(notifier: Notifier) -> FastAPI:
    app = FastAPI(title="Nazar notifier (internal)", docs_url=None, redoc_url=None)

    @app.exception_handler(NazarError)
    async def _error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, NazarError)
        return JSONResponse(
            {"type": f"https://nazar.dev/problems/{exc.code}", "title": exc.title,
             "status": exc.status, "detail": exc.detail},
            status_code=exc.status, media_type="application/problem+json",
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(notifier.store.pool.fetchval("SELECT 1"), 2.0)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unavailable: {type(exc).__name__}"
        checks["broker"] = "ok" if notifier.broker.connected else "unavailable"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "down", "checks": checks},
                            status_code=200 if ok else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/internal/v1/channels/{name}/test")
    async def test_channel(name: Annotated[str, Path(pattern=NAME_PATTERN)]) -> dict[str, Any]:
        return await notifier.send_test(name)

    return app
