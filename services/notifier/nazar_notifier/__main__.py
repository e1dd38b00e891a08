"""``nazar-notifier``: consume alert events and deliver notifications."""

from __future__ import annotations

import asyncio

import httpx

from nazar_common.errors import TransientError
from nazar_common.runtime.worker import Runtime, run_worker
from nazar_common.telemetry import setup_logging, setup_tracing
from nazar_notifier.api import create_http_app
from nazar_notifier.service import Notifier
from nazar_notifier.settings import NotifierSettings

SERVICE = "nazar-notifier"


class NotifierProcess:
    """The notifier on the worker runtime (see ``run_worker``)."""

    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings
        self.runtime = Runtime("notifier", settings)
        self.http = httpx.AsyncClient(timeout=settings.notifier_send_timeout,
                                      follow_redirects=False)
        self.notifier: Notifier | None = None

    async def start(self) -> None:
        pool = await self.runtime.open_database(min_size=1)
        self.notifier = Notifier(self.settings, pool, self.runtime.broker, self.http)
        self.notifier.start(self.runtime)
        self.runtime.start_broker()

    def stopping(self) -> None:
        if self.notifier is not None:
            self.notifier.stopping()

    async def drain(self) -> None:
        try:
            if self.notifier is not None:
                await self.notifier.drain()
        finally:
            await self.http.aclose()

    def current(self) -> Notifier:
        if self.notifier is None:
            raise TransientError("the notifier is starting", retry_after=2)
        return self.notifier

    async def checks(self) -> dict[str, str]:
        return {"database": await self.runtime.database_check(), **self.runtime.checks()}


async def run(settings: NotifierSettings, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (default: SIGTERM / SIGINT)."""
    setup_logging(settings, SERVICE)
    setup_tracing(settings, SERVICE)
    process = NotifierProcess(settings)
    await run_worker(process, create_http_app(process), settings.notifier_listen_host,
                     settings.notifier_listen_port, stop=stop)


def main() -> None:
    asyncio.run(run(NotifierSettings()))


if __name__ == "__main__":
    main()
