"""Fixtures of the agent's integration tests: a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.agent.agent_ingest_stub import IngestStub, free_port


@pytest.fixture
async def ingest() -> AsyncIterator[IngestStub]:
    """A stub that is already listening."""
    stub = IngestStub(free_port())
    await stub.start()
    yield stub
    await stub.stop()


@pytest.fixture
async def ingest_down() -> AsyncIterator[IngestStub]:
    """A stub on a free port that is NOT listening yet: call ``start()`` in the test."""
    stub = IngestStub(free_port())
    yield stub
    await stub.stop()
