"""``nazar-analyzer``: evaluate alert rules on the sample stream."""

from __future__ import annotations

import asyncio

from nazar_analyzer.http import create_app
from nazar_analyzer.service import SERVICE, AnalyzerService, tune_gc
from nazar_analyzer.settings import AnalyzerSettings
from nazar_common.runtime.worker import run_worker
from nazar_common.telemetry import setup_logging, setup_tracing


async def run(settings: AnalyzerSettings, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (default: SIGTERM / SIGINT)."""
    service = AnalyzerService(settings)
    await run_worker(
        service,
        create_app(service),
        settings.analyzer_listen_host,
        settings.analyzer_listen_port,
        stop=stop,
    )


def main() -> None:
    settings = AnalyzerSettings()
    tune_gc()
    setup_logging(settings, SERVICE)
    setup_tracing(settings, SERVICE)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
