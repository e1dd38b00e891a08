"""Rule parameters become detectors that fire with their defaults."""

from __future__ import annotations

import random

import pytest

from nazar_analyzer.detectors import Limits, new_detector
from nazar_common.schemas.config import AnomalyParams, BaselineParams


@pytest.mark.parametrize(
    "params",
    [
        AnomalyParams(training_window=6 * 3600),
        AnomalyParams(algorithm="isolation_forest", training_window=6 * 3600, retrain_every=3600),
        AnomalyParams(algorithm="ensemble", training_window=6 * 3600, retrain_every=3600),
        BaselineParams(window=6 * 3600, min_history=3600, seasonality="none"),
        BaselineParams(window=6 * 3600, min_history=3600),
    ],
    ids=["composite (default)", "isolation_forest", "ensemble", "baseline",
         "baseline, seasonality auto"],
)
def test_default_rule_detectors_fire_on_a_spike_and_stay_quiet_before(
    params: AnomalyParams | BaselineParams,
) -> None:
    detector = new_detector(params, interval=60.0, limits=Limits())
    rng = random.Random(7)
    ts = 0.0
    quiet_alarms = 0
    for _ in range(400):  # nearly 7 hours of normal behaviour
        quiet_alarms += detector.update(ts, 100 + rng.gauss(0, 5)).is_anomaly
        ts += 60
    spike = []
    for _ in range(3):
        spike.append(detector.update(ts, 600.0))
        ts += 60
    assert any(r.is_anomaly for r in spike), [r.anomaly_score for r in spike]
    assert quiet_alarms <= 2
    fired = next(r for r in spike if r.is_anomaly)
    assert fired.expected_high is not None and fired.expected_high < 600
    assert "600" in fired.explanation


def test_step_many_explains_the_transitions_of_a_batched_detector() -> None:
    """Points of a batched detector are explained only where they change an
    alert; the transitions still carry the full explanation and contributors."""
    from nazar_analyzer.detectors import BankPool
    from nazar_analyzer.evaluators import new_detector_evaluator, step_many
    from nazar_analyzer.machine import FIRING, RESOLVED, Machine, Status
    from nazar_analyzer.rules import Rule
    from nazar_common.schemas.config import RuleSpec

    spec = {"name": "req", "metric": "req", "keep_firing_for": 0,
            "params": {"kind": "anomaly", "training_window": 6 * 3600}}
    rule = Rule(1, "req", 1, RuleSpec.model_validate(spec))
    ev = new_detector_evaluator(rule, 7, 60.0, Limits(), BankPool())
    rng = random.Random(3)
    times = [60.0 * k for k in range(805)]
    values = [100 + rng.gauss(0, 5) for _ in range(400)] + [900.0] * 5
    values += [100 + rng.gauss(0, 5) for _ in range(400)]
    status = Status()
    transitions, n = step_many([(ev, Machine(), status, times, values)])[0]
    assert n == len(times)
    fired = next(tr for tr in transitions if tr.state == FIRING)
    assert times[400] <= fired.at <= times[404]
    obs = fired.observation
    assert obs is not None and obs.breach and obs.explanation
    assert "900" in obs.explanation and "x its threshold" in obs.explanation
    assert obs.contributors and obs.contributors[0] == "req=900"
    resolved = [tr for tr in transitions if tr.state == RESOLVED]
    assert resolved and resolved[0].observation is not None
    assert resolved[0].observation.explanation


def test_a_composite_snapshot_stored_without_its_interval_is_told_it_on_load() -> None:
    """Detectors stored before they were told their series' sampling interval
    keep their state and take the interval from their snapshot's record."""
    from nazar_analyzer import detectors
    from nazar_analyzer.detection import CompositeConfig, CompositeDetector

    old = CompositeDetector(CompositeConfig(min_history=30))
    rng = random.Random(5)
    for k in range(100):
        old.update(10.0 * k, 50 + rng.gauss(0, 2))
    blob = detectors.dump(old)
    told = detectors.load(blob, detectors.BankPool(), 10.0)
    assert isinstance(told, CompositeDetector)
    assert told.config.interval_s == 10.0 and told.config.point_scale == 30.0
    assert told.bank.export_state(told.slot) == old.bank.export_state(old.slot)
    assert told.config.model_copy(update={"interval_s": 0.0}) == old.config
    as_stored = detectors.load(blob, detectors.BankPool())
    assert isinstance(as_stored, CompositeDetector) and as_stored.config.interval_s == 0.0
