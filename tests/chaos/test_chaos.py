"""Chaos: under steady agent-shaped load with a rule that fires, restart or
kill one thing at a time — RabbitMQ (``stop_app``/``start_app`` twice, a
node restart), PostgreSQL (fast and immediate shutdown), ingest, the
analyzer, the notifier (SIGTERM and SIGKILL) — on private PostgreSQL and
RabbitMQ instances, the services as real processes at their default log
level. After each: every sample answered 202 stored exactly once, the
expected alert opened once, its notification delivered (repeats counted),
consumers back within 10 s of the broker's return, ``/readyz`` 503 while
they were missing. The counts are printed at the end of the run
(``bench/chaos.py`` runs the same scenarios longer, at higher load)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.chaos.conftest import RESULTS
from tests.support import chaos
from tests.support.stack import Stack, running_stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    async with running_stack() as s:
        await chaos.prepare(s)
        yield s


@pytest.mark.parametrize("scenario", chaos.SCENARIOS, ids=[s.name for s in chaos.SCENARIOS])
async def test_fault(stack: Stack, scenario: chaos.Scenario) -> None:
    result = await chaos.run(stack, scenario)
    RESULTS.append(result)
    assert result.accepted > 0
    assert not result.problems, (result.problems, "\n" + chaos.table([result]))
