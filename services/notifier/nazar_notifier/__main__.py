"""``nazar-notifier``: consume alert events and deliver notifications."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import httpx
import uvicorn

from nazar_common.db.migrate import migrate
from nazar_common.db.pool import create_pool, is_connection_error
from nazar_common.errors import TransientError
from nazar_common.messaging.broker import Broker
from nazar_common.messaging.topology import NOTIFIER_ALERTS
from nazar_common.telemetry import setup_logging, setup_tracing
from nazar_notifier.api import create_http_app
from nazar_notifier.service import Notifier
from nazar_notifier.settings import NotifierSettings

log = logging.getLogger("nazar_notifier")
SERVICE = "nazar-notifier"


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: SIGTERM stops the notifier, which
    stops consuming and drains deliveries before the server exits."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _retry(what: str, op, stop: asyncio.Event):  # type: ignore[no-untyped-def]
    delay = 0.5
    while not stop.is_set():
        try:
            return await op()
        except Exception as exc:
            if not (is_connection_error(exc) or isinstance(exc, TransientError | TimeoutError)):
                raise
            log.warning(f"{what} not reachable; retrying", extra={"error": str(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 10)
    return None


async def run(settings: NotifierSettings, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or SIGTERM / SIGINT)."""
    setup_logging(settings, SERVICE)
    setup_tracing(settings, SERVICE)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)

    pool = await _retry("database", lambda: create_pool(settings, SERVICE, min_size=1), stop)
    if pool is None:
        return

    async def _migrate() -> None:
        async with pool.acquire() as conn:
            await migrate(conn, settings.storage_backend)

    await _retry("database", _migrate, stop)
    broker = Broker(settings.amqp_url.get_secret_value())
    await _retry("broker", broker.connect, stop)
    http = httpx.AsyncClient(timeout=settings.notifier_send_timeout, follow_redirects=False)
    notifier = Notifier(settings, pool, broker, http)
    server = _Server(uvicorn.Config(
        create_http_app(notifier), host=settings.notifier_listen_host,
        port=settings.notifier_listen_port, log_config=None, access_log=False, lifespan="off",
    ))
    serve = asyncio.create_task(server.serve())
    try:
        notifier.start()
        if not stop.is_set():
            await broker.consume(NOTIFIER_ALERTS.name, notifier.handle,
                                 prefetch=settings.notifier_prefetch)
            log.info("notifier started", extra={"port": settings.notifier_listen_port})
        await stop.wait()
    finally:
        log.info("notifier stopping")
        await broker.stop_consuming()
        await notifier.stop()
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serve, 10)
        await http.aclose()
        await broker.close()
        await pool.close()


def main() -> None:
    asyncio.run(run(NotifierSettings()))


if __name__ == "__main__":
    main()
