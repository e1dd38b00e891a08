"""Request metrics and server spans (a pure ASGI middleware, cheap on the hot path)."""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import propagate, trace
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
tracer = trace.get_tracer("nazar.ingest.http")


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        carrier = {
            k.decode(): v.decode()
            for k, v in scope.get("headers", [])
            if k in (b"traceparent", b"tracestate")
        }
        ctx = propagate.extract(carrier) if carrier else None

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with tracer.start_as_current_span(
            f"{scope['method']} {scope['path']}", context=ctx, kind=trace.SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                route: Any = scope.get("route")
                path = getattr(route, "path", "unmatched")
                span.set_attribute("http.route", path)
                span.set_attribute("http.response.status_code", status)
                HTTP_REQUESTS.labels(scope["method"], path, str(status)).inc()
                HTTP_SECONDS.labels(scope["method"], path).observe(time.perf_counter() - started)
