"""Fixtures of the agent's integration tests: a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
if importlib.util.find_spec("nazar_agent") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "agent"))

from agent_ingest_stub import IngestStub, free_port


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
