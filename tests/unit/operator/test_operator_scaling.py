"""Pure scaling decisions for the analyzer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nazar_operator.scaling import ScalingPolicy, decide_replicas, is_leader, target_replicas

POLICY = ScalingPolicy(min_replicas=1, max_replicas=6, messages_per_replica=100,
                       up_cooldown=60, down_cooldown=300)


@pytest.mark.parametrize(
    ("depth", "target"),
    [(0, 1), (1, 1), (100, 1), (101, 2), (550, 6), (10_000, 6)],
)
def test_target_follows_depth_within_bounds(depth: int, target: int) -> None:
    assert target_replicas(depth, POLICY) == target


def test_scale_to_zero_only_when_allowed_and_idle() -> None:
    policy = ScalingPolicy(0, 3, 100, 0, 0)
    assert target_replicas(0, policy) == 0
    assert target_replicas(1, policy) == 1


def test_scales_up_without_history() -> None:
    decision = decide_replicas(350, 1, POLICY, None)
    assert (decision.replicas, decision.reason) == (4, "scale up")
    assert decision.changes(1)


def test_cooldowns_hold_changes() -> None:
    assert decide_replicas(350, 1, POLICY, 59).replicas == 1
    assert decide_replicas(350, 1, POLICY, 60).replicas == 4
    assert decide_replicas(0, 4, POLICY, 299).reason == "cooldown"
    assert decide_replicas(0, 4, POLICY, 300).replicas == 1


def test_steady_state_changes_nothing() -> None:
    decision = decide_replicas(250, 3, POLICY, 1)
    assert (decision.replicas, decision.reason) == (3, "steady")
    assert not decision.changes(3)


def test_out_of_bounds_is_corrected_at_once() -> None:
    assert decide_replicas(0, 0, POLICY, 0).replicas == 1
    assert decide_replicas(0, 9, POLICY, 0).replicas == 6


@pytest.mark.parametrize(
    "bounds", [(-1, 3), (4, 3), (0, 0)],
)
def test_policy_rejects_impossible_bounds(bounds: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        ScalingPolicy(bounds[0], bounds[1], 100, 0, 0)


def test_only_the_live_peer_of_highest_priority_leads() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    fresh = (now - timedelta(seconds=10)).isoformat()
    stale = (now - timedelta(seconds=120)).isoformat()
    peers = {
        "a": {"priority": 5, "lifetime": 60, "lastseen": fresh},
        "b": {"priority": 9, "lifetime": 60, "lastseen": fresh},
        "c": {"priority": 99, "lifetime": 60, "lastseen": stale},  # dead
        "d": None,  # withdrawn
    }
    assert is_leader(peers, "b", 9, now)
    assert not is_leader(peers, "a", 5, now)
    assert not is_leader({**peers, "e": {"priority": 9, "lifetime": 60, "lastseen": fresh}},
                         "b", 9, now)  # a tie: both wait, as kopf does
    assert not is_leader({}, "a", 1, now)  # not registered yet
    own = {"priority": 1, "lifetime": 60, "lastseen": fresh}
    assert is_leader({"a": own}, "a", 1, now)
    assert is_leader({"a": own, "x": {"priority": "garbage"}}, "a", 1, now)


def test_never_more_replicas_than_partitions() -> None:
    policy = ScalingPolicy(min_replicas=2, max_replicas=20, messages_per_replica=100,
                           up_cooldown=0, down_cooldown=0, partitions=8)
    assert target_replicas(100_000, policy) == 8
    assert decide_replicas(100_000, 4, policy, None).replicas == 8
    assert (decide_replicas(0, 12, policy, None).replicas,
            decide_replicas(0, 12, policy, None).reason) == (8, "above maximum")
    # a minimum above the partitions is held at the partitions
    tight = ScalingPolicy(10, 20, 100, 0, 0, partitions=4)
    assert decide_replicas(0, 1, tight, None).replicas == 4
    assert decide_replicas(0, 4, tight, None).reason == "steady"
