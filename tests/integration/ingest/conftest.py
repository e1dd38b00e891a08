"""An ingest server as it runs by default (INFO logs, JSON lines), on a
database and vhost of its own, with a short body timeout for the tests that
send slow bodies."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.conftest import IngestServer, private_database, private_vhost, start_ingest

#: Seconds a client has to send a body, on ``default_server``.
BODY_TIMEOUT = 2.0
#: Port 1 of the loopback: nothing listens there.
UNREACHABLE = "http://127.0.0.1:1"


@pytest.fixture(scope="module")
def module_token() -> str:
    return secrets.token_hex(4)


@pytest.fixture(scope="module")
async def module_database_url(module_token: str) -> AsyncIterator[str]:
    async with private_database(module_token) as url:
        yield url


@pytest.fixture(scope="module")
def module_amqp_url(module_token: str) -> Iterator[str]:
    with private_vhost(module_token) as url:
        yield url


@pytest.fixture(scope="module")
async def default_server(
    module_database_url: str, module_amqp_url: str
) -> AsyncIterator[IngestServer]:
    """An ingest server with the default log settings (INFO, JSON)."""
    server = await start_ingest(
        module_database_url,
        module_amqp_url,
        log_level="INFO",
        log_format="json",
        body_timeout=BODY_TIMEOUT,
        # No analyzer or notifier here (nor anyone else's on this machine):
        # backtests and channel tests answer 503.
        analyzer_url=UNREACHABLE,
        notifier_url=UNREACHABLE,
    )
    yield server
    server.thread.stop()
