"""The analyzer scaler: queue depth in, Deployment replicas out, every interval.

One :meth:`Scaler.tick` reads the depth and the current replicas (adapters),
asks the pure :func:`decide_replicas` and applies its answer. The time of the
last change is kept in memory: after a restart the first decision is free of
cooldown, and the bounds still hold.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import kopf

from nazar_common.errors import NazarError
from nazar_operator.kube import DeploymentScale
from nazar_operator.queue import QueueDepth
from nazar_operator.scaling import ScalingDecision, ScalingPolicy, decide_replicas

log = logging.getLogger(__name__)

Connect = Callable[[], Awaitable[kopf.ConnectionInfo]]
Leader = Callable[[], Awaitable[bool]]


class Scaler:
    def __init__(
        self,
        depth: QueueDepth,
        connect: Connect,
        namespace: str,
        deployment: str,
        policy: ScalingPolicy,
        clock: Callable[[], float] = time.monotonic,
        leader: Leader | None = None,
    ) -> None:
        self._leader = leader
        self._depth = depth
        self._connect = connect
        self.namespace = namespace
        self.deployment = deployment
        self.policy = policy
        self._clock = clock
        self._changed_at: float | None = None

    async def tick(self) -> ScalingDecision:
        """One decision; raises the NazarError of an adapter that failed."""
        depth = await self._depth.read()
        target = DeploymentScale(await self._connect(), self.namespace, self.deployment)
        try:
            current = await target.replicas()
            since = None if self._changed_at is None else self._clock() - self._changed_at
            decision = decide_replicas(depth, current, self.policy, since)
            if decision.changes(current):
                await target.set_replicas(decision.replicas)
                self._changed_at = self._clock()
                log.info(
                    "analyzer scaled",
                    extra={"deployment": f"{self.namespace}/{self.deployment}", "depth": depth,
                           "from": current, "to": decision.replicas, "reason": decision.reason},
                )
            return decision
        finally:
            await target.aclose()

    async def aclose(self) -> None:
        await self._depth.aclose()

    async def run(self, interval: float, stopped: asyncio.Event) -> None:
        """Tick every ``interval`` seconds until ``stopped`` is set, while this replica
        is the elected one (``leader``, when given); failures are logged."""
        while not stopped.is_set():
            try:
                if self._leader is None or await self._leader():
                    await self.tick()
                else:
                    log.debug("scaling left to the active operator replica")
            except NazarError as exc:
                log.warning("scaling skipped", extra={"error": exc.detail})
            except Exception:
                log.exception("scaling failed")
            try:
                await asyncio.wait_for(stopped.wait(), timeout=interval)
            except TimeoutError:
                pass
