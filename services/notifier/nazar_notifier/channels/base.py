"""What every channel implements, and the HTTP outcome rules they share.

A channel sends one :class:`~nazar_notifier.model.Notification` and either
returns a :class:`~nazar_notifier.model.SendResult` or raises
``TransientError`` (retry; ``retry_after`` honoured) or ``PermanentError``
(give up at once). Error texts never contain the endpoint's URL or secrets.
"""

from __future__ import annotations

import email.utils
import time
import urllib.parse
from typing import Protocol

import httpx

from nazar_common.errors import PermanentError, TransientError
from nazar_notifier.model import Notification, SendResult


class Channel(Protocol):
    #: Breaker key and ``deliveries.endpoint``: ``scheme://host:port``, nothing secret.
    endpoint: str

    async def send(self, notification: Notification) -> SendResult: ...


def endpoint_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}:{port}"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class DeliveryFailedError(PermanentError):
    """A permanent delivery failure, with the HTTP status when there was one."""

    def __init__(self, detail: str, http_status: int | None = None) -> None:
        super().__init__(detail)
        self.http_status = http_status


class DeliveryRetryError(TransientError):
    """A transient delivery failure, with the HTTP status when there was one."""

    def __init__(
        self, detail: str, http_status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.http_status = http_status


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    endpoint: str,
    headers: dict[str, str] | None = None,
) -> SendResult:
    """POST JSON and classify: 2xx ok; 408/425/429/5xx and network errors transient
    (429/503 with ``Retry-After`` honoured); other statuses permanent."""
    try:
        response = await client.post(
            url, content=body, headers={"Content-Type": "application/json", **(headers or {})}
        )
    except httpx.TimeoutException as exc:
        raise DeliveryRetryError(f"timeout ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise DeliveryRetryError(f"connection failed ({type(exc).__name__})") from None
    status = response.status_code
    snippet = response.text[:200].replace("\n", " ")
    if 200 <= status < 300:
        return SendResult(endpoint=endpoint, http_status=status, detail=snippet)
    if status in (408, 425, 429) or status >= 500:
        raise DeliveryRetryError(
            f"HTTP {status}: {snippet}",
            http_status=status,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    raise DeliveryFailedError(f"HTTP {status}: {snippet}", http_status=status)
