"""``nazar-analyzer``: evaluate alert rules on the sample stream."""

from __future__ import annotations

import asyncio
import signal

from nazar_analyzer.http import create_app, serve
from nazar_analyzer.service import SERVICE, AnalyzerService
from nazar_analyzer.settings import AnalyzerSettings
from nazar_common.telemetry import setup_logging, setup_tracing


async def run(settings: AnalyzerSettings) -> None:
    service = AnalyzerService(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await serve(create_app(service), settings.analyzer_listen_host,
                         settings.analyzer_listen_port)
    starting = asyncio.create_task(service.start())
    done, _ = await asyncio.wait({starting, asyncio.create_task(stop.wait())},
                                 return_when=asyncio.FIRST_COMPLETED)
    if starting in done:
        starting.result()
        await stop.wait()
    else:
        starting.cancel()
    await service.stop()
    server.should_exit = True
    await server.task  # type: ignore[attr-defined]


def main() -> None:
    settings = AnalyzerSettings()
    setup_logging(settings, SERVICE)
    setup_tracing(settings, SERVICE)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
