"""The HTTP edge: what every request goes through before its route.

:class:`EdgeMiddleware` is the outermost layer of the application. It

* gives the client ``body_timeout`` seconds to send the whole request body:
  a body that has not arrived by then (a client that declared 1,000 bytes
  and sent 10) ends the request with ``408`` and the connection is closed,
  so a slow client cannot hold a connection and a request slot forever;
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


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, body_timeout: float) -> None:
        self.app = app
        self.body_timeout = body_timeout

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

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:  # e.g. waiting for a disconnect after the body
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeoutError(
                    f"the request body did not arrive within {self.body_timeout:g} s"
                ) from None
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
