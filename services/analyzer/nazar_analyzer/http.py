"""The analyzer's internal HTTP endpoint: health, readiness, metrics and
rule backtests (called by the API's ``POST /api/v1/rules/backtest``).

It listens on 127.0.0.1 by default and has no authentication of its own:
expose it only to the API (a ClusterIP service / network policy)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from nazar_analyzer import backtest
from nazar_common.errors import NazarError, TransientError

if TYPE_CHECKING:
    from nazar_analyzer.service import AnalyzerService

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://nazar.dev/problems/"


def _problem(status: int, title: str, detail: str, code: str, **extra: Any) -> JSONResponse:
    body = {"type": PROBLEM_BASE + code, "title": title, "status": status, "detail": detail}
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def create_app(service: AnalyzerService) -> FastAPI:
    app = FastAPI(title="Nazar analyzer (internal)", version="1")

    @app.exception_handler(NazarError)
    async def _nazar_error(request: Request, exc: NazarError) -> JSONResponse:
        return _problem(exc.status, exc.title, exc.detail, exc.code, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": ".".join(str(p) for p in e.get("loc", ())), "msg": e.get("msg", "")}
            for e in exc.errors()
        ]
        return _problem(400, "Invalid input", "the request does not match the schema",
                        "invalid-input", errors=errors)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        checks = service.checks()
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "down", "checks": checks},
                            status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/backtest")
    async def run_backtest(req: backtest.BacktestRequest) -> dict[str, Any]:
        if service.pool is None:
            raise TransientError("the analyzer has no database connection yet", retry_after=5)
        s = service.settings
        return await backtest.run(
            service.pool,
            req,
            service.engine.hosts,
            limits=service.engine.limits,
            default_interval=s.analyzer_default_interval,
            max_series=s.analyzer_backtest_max_series,
            max_points=s.analyzer_backtest_max_points,
        )

    return app


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling (the service drains first)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(app: FastAPI, host: str, port: int) -> _Server:
    """Start serving ``app`` in this event loop; returns the server (``should_exit`` stops it)."""
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                            lifespan="off")
    server = _Server(config)
    task = asyncio.create_task(server.serve(), name="analyzer-http")
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("analyzer HTTP server did not start")
        await asyncio.sleep(0.01)
    server.task = task  # type: ignore[attr-defined]
    return server
