"""Prometheus request metrics (a pure ASGI middleware, cheap on the hot path).

Server spans come from FastAPI's own OpenTelemetry instrumentation."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_REQUESTS = Counter(
    "nazar_ingest_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "nazar_ingest_http_request_seconds",
    "HTTP request duration",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


#: (method, route, status) -> the metrics' children: ``labels()`` costs a
#: lookup under a lock, on every request otherwise. Routes are templates, so
#: this stays small.
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            path = getattr(route, "path", "unmatched")
            key = (scope["method"], path, status)
            children = _children.get(key)
            if children is None:
                children = _children[key] = (
                    HTTP_REQUESTS.labels(key[0], path, str(status)),
                    HTTP_SECONDS.labels(key[0], path),
                )
            children[0].inc()
            children[1].observe(time.perf_counter() - started)
