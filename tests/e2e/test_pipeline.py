"""End to end: agent-shaped samples → ingest → analyzer → notifier → Slack.

A host reports normal CPU, then a spike above a threshold rule's level, then
normal again: the Slack stand-in receives exactly one firing message and
exactly one resolved message."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.pipeline import Pipeline

pytestmark = pytest.mark.slow


async def test_cpu_spike_is_notified_once_firing_and_once_resolved(
    fresh_database_url: str, fresh_amqp_url: str
) -> None:
    pipeline = Pipeline(fresh_database_url, fresh_amqp_url)
    try:
        await pipeline.start()
        spike = await pipeline.spike("e2e-host-1")
        await asyncio.sleep(2.0)  # anything extra would show up now
        firing = pipeline.messages("e2e-host-1", "FIRING")
        resolved = pipeline.messages("e2e-host-1", "RESOLVED")
        assert len(firing) == 1, (firing, pipeline.tail("analyzer"), pipeline.tail("notifier"))
        assert len(resolved) == 1, (resolved, pipeline.tail("notifier"))
        assert spike.firing_latency is not None and spike.firing_latency > 0
        print(f"spike → Slack firing message: {spike.firing_latency:.3f} s; "
              f"recovery → resolved message: {spike.resolved_latency:.3f} s")
    finally:
        await pipeline.stop()
