"""The analyzer's internal HTTP endpoint: health, readiness, metrics, rule
backtests and capacity forecasts (called by the API's
``POST /api/v1/rules/backtest`` and ``GET /api/v1/forecast``).

It listens on 127.0.0.1 by default and has no authentication of its own:
expose it only to the API (a ClusterIP service / network policy)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from nazar_analyzer import backtest, forecast_query
from nazar_common.errors import NazarError, TransientError
from nazar_common.runtime.http import readiness

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
        """200 when rules are loaded, the broker is connected and the samples
        consumer is attached; 503 naming what is not."""
        status, body = readiness(service.checks())
        return JSONResponse(body, status_code=status)

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

    @app.post("/forecast")
    async def run_forecast(req: forecast_query.ForecastRequest) -> dict[str, Any]:
        if service.pool is None:
            raise TransientError("the analyzer has no database connection yet", retry_after=5)
        return await forecast_query.run(service.pool, req)

    return app
