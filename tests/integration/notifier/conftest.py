"""Fixtures of the notifier integration tests: a fresh database and vhost per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.notifier.support import Receiver, prepare_db


@pytest.fixture
async def db(fresh_database_url: str) -> str:
    await prepare_db(fresh_database_url)
    return fresh_database_url


@pytest.fixture
async def slack() -> AsyncIterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()
