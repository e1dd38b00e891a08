from __future__ import annotations

from email.utils import formatdate

import httpx
import pytest

from nazar_agent.sender import HttpSender, Verdict, classify, parse_retry_after
from nazar_agent.settings import AgentSettings


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (202, Verdict.DELIVERED),
        (400, Verdict.REJECTED),
        (404, Verdict.REJECTED),
        (413, Verdict.REJECTED),
        (422, Verdict.REJECTED),
        (401, Verdict.RETRY),
        (403, Verdict.RETRY),
        (408, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
        (301, Verdict.RETRY),
    ],
)
def test_classify(status: int, verdict: Verdict) -> None:
    assert classify(status) is verdict


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("999999") == 3600.0
    assert parse_retry_after(formatdate(1000.0 + 30, usegmt=True), now=1000.0) == 30.0
    assert parse_retry_after(formatdate(1000.0 - 30, usegmt=True), now=1000.0) == 0.0


async def test_send_classifies_responses_and_connection_errors() -> None:
    answers = iter(
        [
            httpx.Response(202, json={"accepted": 1}),
            httpx.Response(
                400,
                json={"title": "bad metric"},
                headers={"Content-Type": "application/problem+json"},
            ),
            httpx.Response(429, headers={"Retry-After": "5"}),
        ]
    )
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 4:
            raise httpx.ConnectError("refused")
        return next(answers)

    settings = AgentSettings(url="http://ingest.test", api_key="k3y")
    sender = HttpSender(settings, transport=httpx.MockTransport(handler))
    ok = await sender.send("id-1", b"body")
    assert ok.verdict is Verdict.DELIVERED and ok.status == 202
    bad = await sender.send("id-2", b"body")
    assert bad.verdict is Verdict.REJECTED and "bad metric" in bad.detail
    busy = await sender.send("id-3", b"body")
    assert busy.verdict is Verdict.RETRY and busy.retry_after == 5.0
    down = await sender.send("id-4", b"body")
    assert down.verdict is Verdict.RETRY and down.status is None and "ConnectError" in down.detail
    await sender.aclose()
    assert seen[0].url == "http://ingest.test/api/v1/metrics"
    assert seen[0].headers["Authorization"] == "Bearer k3y"
    assert seen[0].headers["Idempotency-Key"] == "id-1"
    assert seen[0].headers["Content-Encoding"] == "gzip"
