"""Pure scaling decision for the analyzer Deployment.

The analyzer's work is the backlog of its partition queues
(``nazar.analyzer.samples.p<N>``, summed): each replica is expected to absorb
``messages_per_replica`` queued batches. The decision scales up quickly and
down slowly (separate cooldowns after the last change) and always stays
within ``[min_replicas, max_replicas]`` — and never above the number of
partitions: a replica beyond it would own none. With several operator
replicas only the elected one scales (:func:`is_leader`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class ScalingPolicy:
    min_replicas: int
    max_replicas: int
    messages_per_replica: int
    up_cooldown: float
    down_cooldown: float
    #: Partitions of the sample stream (None: no such cap).
    partitions: int | None = None

    @property
    def ceiling(self) -> int:
        """The most replicas that can have work."""
        if self.partitions is None:
            return self.max_replicas
        return min(self.max_replicas, self.partitions)

    def __post_init__(self) -> None:
        if self.min_replicas < 0 or self.max_replicas < max(self.min_replicas, 1):
            raise ValueError("need 0 <= min_replicas <= max_replicas and max_replicas >= 1")
        if self.messages_per_replica < 1:
            raise ValueError("messages_per_replica must be at least 1")


@dataclass(frozen=True)
class ScalingDecision:
    replicas: int
    reason: str

    def changes(self, current: int) -> bool:
        return self.replicas != current


def target_replicas(depth: int, policy: ScalingPolicy) -> int:
    """Replicas the backlog calls for, within the bounds (at least one while work waits)."""
    wanted = math.ceil(max(depth, 0) / policy.messages_per_replica)
    if depth > 0:
        wanted = max(wanted, 1)
    return min(max(wanted, policy.min_replicas), policy.ceiling)


def decide_replicas(
    depth: int,
    current: int,
    policy: ScalingPolicy,
    since_last_change: float | None,
) -> ScalingDecision:
    """Desired replicas given the queue depth and the current replicas.

    ``since_last_change`` is the number of seconds since the operator last
    changed the replicas (None: not since it started).
    """
    if current < min(policy.min_replicas, policy.ceiling):
        return ScalingDecision(min(policy.min_replicas, policy.ceiling), "below minimum")
    if current > policy.ceiling:
        return ScalingDecision(policy.ceiling, "above maximum")
    target = target_replicas(depth, policy)
    if target == current:
        return ScalingDecision(current, "steady")
    cooldown = policy.up_cooldown if target > current else policy.down_cooldown
    if since_last_change is not None and since_last_change < cooldown:
        return ScalingDecision(current, "cooldown")
    return ScalingDecision(target, "scale up" if target > current else "scale down")


def is_leader(
    peers: Mapping[str, Mapping[str, Any] | None], identity: str, priority: int, now: datetime
) -> bool:
    """Whether this replica is the active one among the live peers of a kopf
    peering object's status (``{identity: {priority, lifetime, lastseen}}``).

    As kopf decides for the resources: a replica waits until its own
    heartbeat is listed, and while a live peer of higher or equal priority
    is. A peer is live until ``lastseen`` plus ``lifetime`` seconds.
    """
    if not peers.get(identity):
        return False
    for other, info in peers.items():
        if other == identity or not info:
            continue
        try:
            seen = datetime.fromisoformat(str(info["lastseen"]))
            lifetime = float(info.get("lifetime", 60))
            theirs = int(info.get("priority", 0))
        except (KeyError, TypeError, ValueError):
            continue
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=UTC)
        if seen + timedelta(seconds=lifetime) > now and theirs >= priority:
            return False
    return True
