"""Translation of errors into RFC 9457 problem+json responses (the HTTP edge)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from nazar_common.errors import InvalidInputError, NazarError, TransientError

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://nazar.dev/problems/"
MEDIA_TYPE = "application/problem+json"


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
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def invalid_input(exc: ValidationError, what: str) -> InvalidInputError:
    """A pydantic validation failure as a 400 listing each field (``loc``, ``msg``)."""
    return InvalidInputError(
        f"invalid {what}",
        errors=[
            {"loc": ".".join(map(str, e.get("loc", ()))), "msg": e.get("msg", "")}
            for e in exc.errors()
        ],
    )


async def _nazar_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NazarError)
    headers = {}
    if isinstance(exc, TransientError):
        headers["Retry-After"] = str(int(exc.retry_after or 5))
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="nazar"'
    if exc.status >= 500:
        log.warning("request failed", extra={"path": request.url.path, "error": exc.detail})
    return problem(exc.status, exc.title, exc.detail, exc.code, headers or None, **exc.extra)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": ".".join(str(p) for p in e.get("loc", ())), "msg": e.get("msg", "")}
        for e in exc.errors()
    ]
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


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"path": request.url.path})
    return problem(500, "Internal error", "an unexpected error occurred", "internal")


def install(app: FastAPI) -> None:
    app.add_exception_handler(NazarError, _nazar_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
