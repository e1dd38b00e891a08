"""The notifier's small HTTP surface: health, readiness, metrics, and the
internal test-notification endpoint the API calls
(``POST /internal/v1/channels/{name}/test``). It is meant for the cluster
network only: bind it to loopback or protect it with a network policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Path, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from nazar_common.errors import NazarError
from nazar_common.runtime.http import readiness
from nazar_common.schemas.config import NAME_PATTERN

if TYPE_CHECKING:
    from nazar_notifier.__main__ import NotifierProcess


def create_http_app(process: NotifierProcess) -> FastAPI:
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
        """200 when the database answers, the broker is connected and the alerts
        consumer is attached; 503 naming what is not."""
        status, body = readiness(await process.checks())
        return JSONResponse(body, status_code=status)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/internal/v1/channels/{name}/test")
    async def test_channel(name: Annotated[str, Path(pattern=NAME_PATTERN)]) -> dict[str, Any]:
        return await process.current().send_test(name)

    return app
