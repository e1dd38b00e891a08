"""The body deadlines of the HTTP edge, checked by one shared timer."""

import asyncio
import time

import pytest
from starlette.types import Message, Receive, Scope, Send

from nazar_common.errors import RequestTimeoutError
from nazar_ingest.edge import EdgeMiddleware

SCOPE: Scope = {"type": "http", "path": "/api/v1/metrics", "query_string": b"", "method": "POST"}


def body_after(delay: float) -> Receive:
    async def receive() -> Message:
        await asyncio.sleep(delay)
        return {"type": "http.request", "body": b"{}", "more_body": False}

    return receive


async def reader(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 202, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def status_of(edge: EdgeMiddleware, receive: Receive) -> int:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await edge(SCOPE, receive, send)
    return int(sent[0]["status"])


async def test_a_body_in_time_passes_and_a_late_one_gets_408() -> None:
    edge = EdgeMiddleware(reader, body_timeout=0.3, tick=0.05)
    started = time.monotonic()
    results = await asyncio.gather(
        *(status_of(edge, body_after(d)) for d in (0.0, 0.1, 0.2, 1.0, 5.0))
    )
    assert results == [202, 202, 202, 408, 408]
    assert 0.3 <= time.monotonic() - started < 0.6  # the late ones end at their deadline
    assert not edge.deadlines.waiting
    await asyncio.sleep(0.1)
    assert edge.deadlines._timer is None  # no timer while nothing waits


async def test_a_deadline_passed_while_the_app_worked_ends_the_next_read() -> None:
    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(0.3)  # e.g. waiting for something before reading
        await reader(scope, receive, send)

    edge = EdgeMiddleware(slow_app, body_timeout=0.1, tick=0.05)
    assert await status_of(edge, body_after(1.0)) == 408


async def test_a_cancellation_from_elsewhere_is_not_a_timeout() -> None:
    edge = EdgeMiddleware(reader, body_timeout=10, tick=0.05)
    task = asyncio.create_task(status_of(edge, body_after(5.0)))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not edge.deadlines.waiting


async def test_the_timeout_error_names_the_limit() -> None:
    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        with pytest.raises(RequestTimeoutError, match=r"within 0\.1 s"):
            await receive()
        raise RequestTimeoutError("seen")

    edge = EdgeMiddleware(raw, body_timeout=0.1, tick=0.02)
    assert await status_of(edge, body_after(1.0)) == 408
