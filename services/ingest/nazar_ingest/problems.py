"""Translation of errors into RFC 9457 problem+json responses (the HTTP edge)."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from nazar_common.errors import (
    InvalidInputError,
    NazarError,
    RequestTimeoutError,
    TransientError,
)

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://nazar.dev/problems/"
MEDIA_TYPE = "application/problem+json"


class ProblemResponse(JSONResponse):
    """problem+json, rendered as ASCII: a detail may quote what a client
    sent, which need not be encodable (a lone surrogate)."""

    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def problem(
    status: int,
    title: str,
    detail: str,
    code: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": PROBLEM_BASE + code, "title": title, "status": status, "detail": detail}
    body.update(extra)
    return ProblemResponse(body, status_code=status, headers=headers)


def invalid_input(exc: ValidationError, what: str) -> InvalidInputError:
    """A pydantic validation failure as a 400 listing each field (``loc``, ``msg``)."""
    return InvalidInputError(f"invalid {what}", errors=validation_errors(exc))


def error_response(exc: NazarError) -> JSONResponse:
    """The problem+json answer to ``exc``, with the headers its status calls for."""
    headers = {}
    if isinstance(exc, TransientError):
        headers["Retry-After"] = str(int(exc.retry_after or 5))
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="nazar"'
    if isinstance(exc, RequestTimeoutError):
        # The rest of the body may still come: it cannot be told from the next request.
        headers["Connection"] = "close"
    return problem(exc.status, exc.title, exc.detail, exc.code, headers or None, **exc.extra)


async def _nazar_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NazarError)
    if exc.status >= 500:
        log.warning("request failed", extra={"path": request.url.path, "error": exc.detail})
    return error_response(exc)


def validation_errors(exc: ValidationError | RequestValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as ``{"loc", "msg"}`` (printable text only: a
    location may be a key the client sent)."""
    return [
        {"loc": ".".join(_printable(str(p)) for p in e.get("loc", ())), "msg": e.get("msg", "")}
        for e in exc.errors()
    ]


def _printable(text: str) -> str:
    return text if text.isprintable() else ascii(text)[1:-1]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc)
    return problem(
        400,
        "Invalid input",
        "the request does not match the schema",
        "invalid-input",
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem(
        exc.status_code,
        str(exc.detail),
        str(exc.detail),
        f"http-{exc.status_code}",
        dict(exc.headers) if exc.headers else None,
    )


def internal_error() -> JSONResponse:
    """The answer to an unexpected error (a bug; its details go to the log only)."""
    return problem(500, "Internal error", "an unexpected error occurred", "internal")


def install(app: FastAPI) -> None:
    """Handlers of the expected errors; unexpected ones are answered by
    :class:`nazar_ingest.edge.EdgeMiddleware`."""
    app.add_exception_handler(NazarError, _nazar_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
