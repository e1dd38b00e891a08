"""The HTTP adapter: POSTs one encoded batch to the ingest API and classifies the answer."""

from __future__ import annotations

import enum
import logging
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

from nazar_agent import __version__
from nazar_agent.settings import AgentSettings

logger = logging.getLogger(__name__)

#: 4xx answers that mean "try again later", not "this batch is bad".
RETRYABLE_CLIENT_ERRORS = frozenset({408, 425, 429})
#: 4xx answers caused by the agent's credentials, not by the batch: keep the batch
#: and retry, so a wrong or rotated API key does not throw away the whole buffer.
CREDENTIAL_ERRORS = frozenset({401, 403})
#: Longest Retry-After honoured, seconds (protects against absurd values).
MAX_RETRY_AFTER = 3600.0
_DETAIL_LIMIT = 1000


class Verdict(enum.Enum):
    DELIVERED = "delivered"  # the server stored the batch: delete it
    REJECTED = "rejected"  # the batch is bad and will never be accepted: delete it
    RETRY = "retry"  # keep the batch and send it again later


@dataclass(frozen=True, slots=True)
class SendResult:
    verdict: Verdict
    status: int | None = None
    retry_after: float | None = None
    detail: str = ""


def classify(status: int) -> Verdict:
    """What to do with a batch given the HTTP status the server answered."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if 400 <= status < 500 and status not in RETRYABLE_CLIENT_ERRORS | CREDENTIAL_ERRORS:
        return Verdict.REJECTED
    return Verdict.RETRY  # 1xx/3xx (misconfiguration), 401/403, 408, 429, 5xx


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def tls_verify(settings: AgentSettings) -> ssl.SSLContext | bool:
    """The ``verify`` argument for httpx from the TLS settings."""
    if settings.ca_file is not None:
        return ssl.create_default_context(cafile=str(settings.ca_file))
    return settings.verify_tls


class HttpSender:
    """Sends batches with httpx; one connection pool for the agent's lifetime."""

    def __init__(
        self, settings: AgentSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._url = settings.ingest_url
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "User-Agent": f"nazar-agent/{__version__}",
        }
        if settings.api_key is not None:
            headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=settings.timeout,
            verify=tls_verify(settings),
            follow_redirects=False,
            transport=transport,
        )

    async def send(self, batch_id: str, body: bytes) -> SendResult:
        try:
            response = await self._client.post(
                self._url, content=body, headers={"Idempotency-Key": batch_id}
            )
        except httpx.HTTPError as exc:
            return SendResult(Verdict.RETRY, detail=f"{type(exc).__name__}: {exc}")
        verdict = classify(response.status_code)
        detail = "" if verdict is Verdict.DELIVERED else response.text[:_DETAIL_LIMIT]
        retry_after = None
        if verdict is Verdict.RETRY:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return SendResult(verdict, response.status_code, retry_after, detail)

    async def aclose(self) -> None:
        await self._client.aclose()
