"""One error hierarchy for every Nazar component.

Each edge translates these once: the HTTP layer into problem+json responses,
message consumers into ack / requeue / dead-letter, the operator into kopf's
TemporaryError / PermanentError.
"""

from __future__ import annotations

from typing import Any


class NazarError(Exception):
    """Base of all errors raised on purpose by Nazar code."""

    #: HTTP status the API edge answers with.
    status: int = 500
    #: Short stable identifier, used as the problem ``type`` suffix.
    code: str = "internal"
    #: Title for problem+json.
    title: str = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class TransientError(NazarError):
    """The operation may succeed when retried later (a dependency is down)."""

    status = 503
    code = "unavailable"
    title = "Service temporarily unavailable"

    def __init__(self, detail: str, retry_after: float | None = None, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class PermanentError(NazarError):
    """Retrying will never help (a poison message, a broken configuration)."""

    status = 500
    code = "permanent"
    title = "Permanent failure"


class InvalidInputError(PermanentError):
    """The caller sent something we cannot accept. Never retried."""

    status = 400
    code = "invalid-input"
    title = "Invalid input"


class PayloadTooLargeError(InvalidInputError):
    status = 413
    code = "payload-too-large"
    title = "Payload too large"


class NotFoundError(InvalidInputError):
    status = 404
    code = "not-found"
    title = "Not found"


class ConflictError(InvalidInputError):
    status = 409
    code = "conflict"
    title = "Conflict"


class IdempotencyKeyReusedError(InvalidInputError):
    """A request's idempotency key was used before for a different request."""

    status = 422
    code = "idempotency-key-reused"
    title = "Idempotency key reused"


class RequestTimeoutError(NazarError):
    """The client did not send its whole request in time (it may try again)."""

    status = 408
    code = "request-timeout"
    title = "Request timeout"


class UnsupportedMediaTypeError(InvalidInputError):
    status = 415
    code = "unsupported-media-type"
    title = "Unsupported media type"


class AuthenticationError(NazarError):
    status = 401
    code = "unauthenticated"
    title = "Missing or invalid API key"


class PermissionDeniedError(NazarError):
    status = 403
    code = "forbidden"
    title = "API key lacks the required scope"
