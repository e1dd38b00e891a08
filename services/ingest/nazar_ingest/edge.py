"""The HTTP edge: what every request goes through before its route.

:class:`EdgeMiddleware` is the outermost layer of the application. It

* gives the client ``body_timeout`` seconds to send the whole request body:
  a body that has not arrived by then (a client that declared 1,000 bytes
  and sent 10) ends the request with ``408`` and the connection is closed,
  so a slow client cannot hold a connection and a request slot forever.
  The deadlines are checked by one timer every 0.1 s (:class:`BodyDeadlines`)
  rather than by a timer per read of the body;
* refuses a query string or path holding a NUL character (``%00``) with
  ``400`` naming the parameter: PostgreSQL cannot take it as a parameter,
  and no parameter of this API can contain one;
* answers an unexpected error (a bug) with a problem+json ``500`` and does
  not let it reach the server: Starlette re-raises such errors after its
  500 response, and uvicorn then closes the connection, so the client's next
  request on the same keep-alive connection would be reset. Here the error
  is logged once and the connection stays usable.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nazar_common.errors import InvalidInputError, NazarError, RequestTimeoutError
from nazar_ingest import problems

log = logging.getLogger(__name__)


def nul_parameter(scope: Scope) -> str | None:
    """The name of a query parameter (or ``"path"``) holding a NUL character."""
    if "\x00" in scope.get("path", ""):
        return "path"
    query: bytes = scope.get("query_string", b"")
    if b"%00" not in query:
        return None
    for name, value in urllib.parse.parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in value or "\x00" in name:
            return name.replace("\x00", "\\u0000")[:100]
    return None


class BodyDeadlines:
    """The deadlines of the request bodies being read, checked every
    ``tick`` seconds by one timer, which runs only while a read waits.

    A task waiting past its deadline is cancelled; :meth:`expired` tells
    its read apart from a cancellation from elsewhere. Cheaper than a timer
    per read (scheduled and cancelled even when the body is already there),
    for a deadline up to ``tick`` late."""

    def __init__(self, tick: float = 0.1) -> None:
        self.tick = tick
        #: Tasks waiting for a body -> their deadline (event loop time).
        self.waiting: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, task: asyncio.Task[Any], deadline: float) -> None:
        self.waiting[task] = deadline
        if self._timer is None or self._loop is not asyncio.get_running_loop():
            self._loop = asyncio.get_running_loop()
            self._timer = self._loop.call_later(self.tick, self._check)

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether ``task`` was cancelled for its deadline (and by nothing else)."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        return task.uncancel() == 0

    def _check(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        waiting = self.waiting
        for task in [t for t, deadline in waiting.items() if deadline <= now]:
            del waiting[task]
            self._expired.add(task)
            task.cancel()
        self._timer = self._loop.call_later(self.tick, self._check) if waiting else None


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, body_timeout: float, tick: float = 0.1) -> None:
        self.app = app
        self.body_timeout = body_timeout
        self.deadlines = BodyDeadlines(tick)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = nul_parameter(scope)
        if where is not None:
            error = InvalidInputError(
                f"{'the path' if where == 'path' else f'query parameter {where!r}'} "
                "contains a NUL character (%00)"
            )
            await self._answer(error, scope, receive, send)
            return

        deadlines = self.deadlines
        deadline = asyncio.get_running_loop().time() + self.body_timeout
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:  # e.g. waiting for a disconnect after the body
                return await receive()
            task = asyncio.current_task()
            assert task is not None
            deadlines.watch(task, deadline)
            try:
                message = await receive()
            except asyncio.CancelledError:
                if deadlines.expired(task):
                    raise RequestTimeoutError(
                        f"the request body did not arrive within {self.body_timeout:g} s"
                    ) from None
                raise
            finally:
                deadlines.waiting.pop(task, None)
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        started = complete = False

        async def tracking_send(message: Message) -> None:
            nonlocal started, complete
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                complete = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except ClientDisconnect:
            return
        except Exception as exc:
            if started and not complete:
                raise  # half a response: only closing the connection can end it
            if not isinstance(exc, NazarError):
                log.error(
                    "unhandled error",
                    exc_info=exc,
                    extra={"path": scope.get("path"), "method": scope.get("method")},
                )
            if not started:
                await self._answer(exc, scope, receive, send)

    @staticmethod
    async def _answer(exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
        if isinstance(exc, NazarError):
            response = problems.error_response(exc)
        else:
            response = problems.internal_error()
        await response(scope, receive, send)
