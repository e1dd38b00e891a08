"""Behaviour of the streaming anomaly detectors (nazar_analyzer.detection)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from nazar_analyzer.detection import (
    ALARM_SCORE,
    AlarmGate,
    BaselineConfig,
    BaselineDetector,
    DetectionResult,
    Detector,
    Direction,
    EnsembleDetector,
    FlatForest,
    IsolationForestDetector,
    available_detectors,
    create_detector,
    detector_from_bytes,
    detector_from_state,
    detector_to_bytes,
    register_detector,
)

STEP = 300.0  # 5-minute points
T0 = 1_700_000_000.0

# smaller, faster settings for the ML detectors in tests
FAST_FOREST: dict[str, Any] = {
    "train_window": 600,
    "min_history": 200,
    "retrain_every": 200,
    "n_estimators": 50,
}
FAST_ENSEMBLE: dict[str, Any] = {
    "baseline": {"min_history": 200, "max_history": 600},
    "forest": FAST_FOREST,
}
DETECTORS: list[tuple[str, dict[str, Any] | None]] = [
    ("baseline", {"min_history": 200, "max_history": 600}),
    ("isolation_forest", FAST_FOREST),
    ("ensemble", FAST_ENSEMBLE),
]


def noisy_series(n: int, seed: int = 1, level: float = 50.0, sigma: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return level + sigma * rng.standard_normal(n)


def run(det: Detector, values: np.ndarray, start: int = 0) -> list[DetectionResult]:
    return [det.update(T0 + STEP * (start + i), float(v)) for i, v in enumerate(values)]


def alarms(results: list[DetectionResult]) -> list[int]:
    return [i for i, r in enumerate(results) if r.is_anomaly]


@pytest.mark.parametrize(("name", "config"), DETECTORS)
def test_spike_is_flagged_immediately(name: str, config: dict[str, Any] | None) -> None:
    values = noisy_series(900)
    values[700] += 40.0  # 20 sigma
    results = run(create_detector(name, config), values)
    hits = alarms(results)
    assert hits and 700 <= hits[0] <= 702, hits
    assert results[700].raw_score >= ALARM_SCORE


@pytest.mark.parametrize(("name", "config"), DETECTORS)
def test_level_shift_is_flagged_shortly_after(name: str, config: dict[str, Any] | None) -> None:
    values = noisy_series(1000, seed=2)
    values[700:] += 8.0  # sustained shift of 4 sigma, never a single extreme point
    results = run(create_detector(name, config), values)
    hits = [i for i in alarms(results) if i >= 650]
    assert hits and 700 <= hits[0] <= 715, hits


@pytest.mark.parametrize(("name", "config"), DETECTORS)
def test_stationary_noise_gives_few_alarms(name: str, config: dict[str, Any] | None) -> None:
    values = noisy_series(3000, seed=3)
    results = run(create_detector(name, config), values)
    assert len(alarms(results)) <= 3
    scored = [r for r in results if not r.learning]
    assert np.mean([r.anomaly_score >= ALARM_SCORE for r in scored]) < 0.01


@pytest.mark.parametrize(("name", "config"), DETECTORS)
def test_result_fields_are_consistent(name: str, config: dict[str, Any] | None) -> None:
    values = noisy_series(800, seed=4)
    values[650] = 200.0
    results = run(create_detector(name, config), values)
    assert results[0].learning and results[0].anomaly_score == 0.0
    for r in results:
        assert 0.0 <= r.anomaly_score <= 1.0
        assert 0.0 <= r.raw_score <= 1.0
        assert r.is_anomaly == (r.anomaly_score >= ALARM_SCORE)
        assert r.explanation
    spike = results[650]
    assert any(r.is_anomaly for r in results[650:653])  # the forest wants 2 of 3 points
    assert spike.expected_low < spike.expected_centre < spike.expected_high < 200.0
    assert "above the expected band" in spike.explanation


@pytest.mark.parametrize(("name", "config"), DETECTORS)
def test_state_round_trip_continues_identically(name: str, config: dict[str, Any] | None) -> None:
    values = noisy_series(1400, seed=5)
    values[900] += 30.0
    values[1200:] -= 10.0
    uninterrupted = run(create_detector(name, config), values)

    det = create_detector(name, config)
    first = run(det, values[:850])
    blob = detector_to_bytes(det)
    assert isinstance(blob, bytes)
    restored = detector_from_bytes(blob)  # e.g. after a service restart
    second = run(restored, values[850:], start=850)
    assert first + second == uninterrupted

    # the plain state dict works too, and does not share buffers with the original
    det2 = create_detector(name, config)
    run(det2, values[:850])
    clone = detector_from_state(det2.state_dict())
    assert run(clone, values[850:], start=850) == uninterrupted[850:]


def test_registry_swaps_algorithms_behind_one_interface() -> None:
    names = available_detectors()
    assert {"baseline", "isolation_forest", "ensemble"} <= set(names)
    assert isinstance(create_detector("baseline"), BaselineDetector)
    assert isinstance(create_detector("isolation_forest"), IsolationForestDetector)
    assert isinstance(create_detector("ensemble"), EnsembleDetector)
    assert isinstance(create_detector(), Detector)
    with pytest.raises(KeyError):
        create_detector("no_such_detector")

    class Constant:
        name = "constant_test"

        def __init__(self, config: dict[str, Any] | None) -> None:
            self.level = float((config or {}).get("level", 0.0))

        def update(self, ts: float, value: float) -> DetectionResult:
            bad = value > self.level
            return DetectionResult(
                ts, value, 1.0 if bad else 0.0, bad, -math.inf, self.level, self.level, "const"
            )

        def state_dict(self) -> dict[str, Any]:
            return {"type": self.name, "config": {"level": self.level}}

        def load_state(self, state: dict[str, Any]) -> None:
            self.level = float(state["config"]["level"])

        def config_dict(self) -> dict[str, Any]:
            return {"level": self.level}

    register_detector("constant_test", Constant)
    with pytest.raises(ValueError):
        register_detector("constant_test", Constant)
    det = create_detector("constant_test", {"level": 5.0})
    assert isinstance(det, Detector)
    assert det.update(T0, 6.0).is_anomaly
    assert detector_from_state(det.state_dict()).update(T0, 4.0).is_anomaly is False


def test_config_overrides_reach_the_detector() -> None:
    det = create_detector("ensemble", {"baseline": {"margin": 0.5}, "forest": {"seed": 7}})
    cfg = det.config_dict()
    assert cfg["baseline"]["margin"] == 0.5
    assert cfg["forest"]["seed"] == 7
    assert cfg["forest"]["n_estimators"] == 100  # untouched default


def test_direction_above_ignores_drops() -> None:
    values = noisy_series(900, seed=6)
    values[700] -= 40.0
    values[800] += 40.0
    cfg = BaselineConfig(min_history=200, direction=Direction.ABOVE)
    hits = alarms(run(BaselineDetector(cfg), values))
    assert hits == [800]


def test_refractory_period_suppresses_repeated_alarms() -> None:
    values = noisy_series(900, seed=7)
    values[700] += 40.0
    values[705] += 100.0  # 25 minutes later, even higher: same incident
    values[850] += 250.0  # 12.5 hours later: new alarm
    det = BaselineDetector(BaselineConfig(min_history=200, refractory_s=6 * 3600.0))
    results = run(det, values)
    assert alarms(results) == [700, 850]
    assert results[705].raw_score >= ALARM_SCORE
    assert "suppressed" in results[705].explanation


def test_alarm_gate_requires_fraction_of_recent_points() -> None:
    gate = AlarmGate(threshold=0.5, window=4, min_fraction=0.5, refractory_s=0.0)
    fired = [gate.step(float(i), s) for i, s in enumerate([0.9, 0.1, 0.1, 0.9, 0.9, 0.1])]
    assert fired == [False, False, False, True, True, False]


def test_daily_seasonality_learns_the_cycle() -> None:
    n = 288 * 6
    t = np.arange(n)
    rng = np.random.default_rng(8)
    values = 50.0 + 30.0 * np.sin(2 * np.pi * t / 288) + rng.standard_normal(n)
    values[288 * 5 + 72] -= 20.0  # a dip at the daily peak, still inside the overall range
    cfg = BaselineConfig(min_history=200, seasonality="daily", season_min_cycles=3.0)  # type: ignore[arg-type]
    det = BaselineDetector(BaselineConfig.from_dict(cfg.to_dict()))
    results = run(det, values)
    late = [i for i in alarms(results) if i >= 288 * 4]
    assert late == [288 * 5 + 72]
    plain = alarms(run(BaselineDetector(BaselineConfig(min_history=200)), values))
    assert 288 * 5 + 72 not in plain


def test_flat_forest_matches_sklearn_scores() -> None:
    rng = np.random.default_rng(9)
    train = rng.standard_normal((256, 5))
    test = rng.standard_normal((40, 5)) * 3.0
    model = IsolationForest(n_estimators=60, max_samples=256, random_state=0).fit(train)
    flat = FlatForest(model)
    expected = -model.score_samples(test)
    np.testing.assert_allclose(flat.score_many(test), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose([flat.score(x) for x in test], expected, rtol=0, atol=1e-12)


def test_non_finite_values_are_ignored() -> None:
    det = create_detector("baseline", {"min_history": 200})
    run(det, noisy_series(300))
    res = det.update(T0 + STEP * 300, math.nan)
    assert not res.is_anomaly and res.anomaly_score == 0.0
    assert not det.update(T0 + STEP * 301, 50.0).is_anomaly


def test_local_scale_flags_a_dip_soon_after_a_level_shift() -> None:
    # a level shift from 6 to 15, then a dip to 12: still far above anything the
    # history knew before the shift (so the raw and smoothed scales, anchored on the
    # old level, see nothing unusual), but 15 sigma below the series' current level
    rng = np.random.default_rng(10)
    values = np.concatenate(
        [6.0 + 0.2 * rng.standard_normal(800), 15.0 + 0.2 * rng.standard_normal(400)]
    )
    values[1100] = 12.0
    cfg = {"min_history": 200, "max_history": 2016}
    results = run(create_detector("baseline", cfg), values)
    plain = alarms(run(create_detector("baseline", {**cfg, "local_scale": False}), values))
    assert [i for i in alarms(results) if i > 900] == [1100]
    assert 1100 not in plain
    assert "below the expected band" in results[1100].explanation
    assert "previous 12 points" in results[1100].explanation


def test_alarm_gate_run_rule_flags_sustained_moderate_scores() -> None:
    gate = AlarmGate(
        threshold=0.5, refractory_s=0.0, sustain_threshold=0.4, sustain_window=5, sustain_count=3
    )
    scores = [0.45, 0.1, 0.45, 0.1, 0.45, 0.45, 0.3, 0.6]
    fired = [gate.step(float(i), s) for i, s in enumerate(scores)]
    assert fired == [False, False, False, False, True, True, False, True]
    plain = AlarmGate(threshold=0.5, refractory_s=0.0)
    assert [plain.step(float(i), s) for i, s in enumerate(scores)] == [False] * 7 + [True]
    # the run-rule history survives a state round trip
    gate2 = AlarmGate(
        threshold=0.5, refractory_s=0.0, sustain_threshold=0.4, sustain_window=5, sustain_count=3
    )
    for i, s in enumerate(scores[:4]):
        gate2.step(float(i), s)
    clone = AlarmGate(
        threshold=0.5, refractory_s=0.0, sustain_threshold=0.4, sustain_window=5, sustain_count=3
    )
    clone.load_state(gate2.state_dict())
    assert [clone.step(float(i), s) for i, s in enumerate(scores[4:], 4)] == fired[4:]


# -- quarantine: a sustained anomaly is not learnt while it lasts -------------------------

# as the analyzer configures rules: every anomalous point is reported (no refractory period)
SERVICE_LIKE: list[tuple[str, dict[str, Any]]] = [
    ("baseline", {"min_history": 200, "max_history": 600, "refractory_s": 0.0}),
    ("ensemble", {**FAST_ENSEMBLE, "refractory_s": 0.0}),
]
HORIZON = 60  # rebaseline_fraction 0.1 of a 600-point history


def plateau_series(length: int, after: int = 60, seed: int = 11) -> np.ndarray:
    """700 points around 50 (sigma 2), ``length`` points around 150, then 50 again."""
    values = noisy_series(700 + length + after, seed=seed)
    values[700 : 700 + length] += 100.0
    return values


@pytest.mark.parametrize(("name", "config"), SERVICE_LIKE)
def test_sustained_anomaly_stays_flagged_against_a_band_that_excludes_it(
    name: str, config: dict[str, Any]
) -> None:
    values = plateau_series(40)
    results = run(create_detector(name, config), values)
    plateau = results[700:740]
    assert all(r.is_anomaly for r in plateau), [r.anomaly_score for r in plateau]
    for r in plateau:
        assert r.expected_high < 70.0, r  # the band is still that of the level before
        assert "above the expected band" in r.explanation
    # the value returns: normal again within the smoothing window, and stays normal
    assert alarms(results[752:]) == []
    assert alarms(results[:700]) == []


def test_one_spike_does_not_widen_the_band_for_the_next() -> None:
    values = noisy_series(800, seed=12)
    values[700:703] = [150.0, 150.0, 150.0]
    results = run(BaselineDetector(BaselineConfig(min_history=200, refractory_s=0.0)), values)
    assert [r.is_anomaly for r in results[700:703]] == [True, True, True]
    assert len({r.expected_high for r in results[700:703]}) == 1
    assert results[702].expected_high < 70.0


def test_isolation_forest_does_not_train_on_the_anomaly_it_reports() -> None:
    values = noisy_series(820, seed=13)
    values[790:810] += 100.0  # the forest retrains after point 799 (every 200 points)
    sample_max = []
    for fraction in (0.1, 0.0):  # quarantine on, off
        det = create_detector("isolation_forest", {**FAST_FOREST, "rebaseline_fraction": fraction})
        results = run(det, values[:800])
        assert all(r.raw_score >= ALARM_SCORE for r in results[791:800])
        sample = det.state_dict()["train_sample"]
        sample_max.append(float(sample[:, 0].max()))  # feature 0 is the value
    assert sample_max[0] < 70.0 < 140.0 < sample_max[1]


@pytest.mark.parametrize(("name", "config"), SERVICE_LIKE)
def test_a_persistent_new_level_is_learnt_after_the_horizon(
    name: str, config: dict[str, Any]
) -> None:
    values = plateau_series(HORIZON + 60, after=0)
    results = run(create_detector(name, config), values)
    assert all(r.is_anomaly for r in results[700 : 700 + HORIZON])
    after = results[700 + HORIZON :]
    assert alarms(after) == []  # re-baselined: the new level is normal now
    assert all(r.expected_high > 150.0 for r in after)
    # with quarantine switched off the band takes in the first point at once
    off = {**config, "rebaseline_fraction": 0.0}
    if name == "ensemble":
        off = {**config, "baseline": {**config["baseline"], "rebaseline_fraction": 0.0}}
    plain = run(create_detector(name, off), values)
    assert plain[702].expected_high > 150.0


@pytest.mark.parametrize(("name", "config"), SERVICE_LIKE)
def test_state_round_trip_in_the_middle_of_a_quarantine_episode(
    name: str, config: dict[str, Any]
) -> None:
    values = plateau_series(HORIZON + 20)
    uninterrupted = run(create_detector(name, config), values)
    det = create_detector(name, config)
    first = run(det, values[:720])
    restored = detector_from_bytes(detector_to_bytes(det))
    assert first + run(restored, values[720:], start=720) == uninterrupted


def test_alarm_gate_extending_refractory_gives_one_alarm_per_incident() -> None:
    scores = [0.9] * 10 + [0.1] * 5 + [0.9]
    fixed = AlarmGate(refractory_s=3.0)
    extending = AlarmGate(refractory_s=3.0, refractory_extends=True)
    assert [i for i, s in enumerate(scores) if fixed.step(float(i), s)] == [0, 3, 6, 9, 15]
    assert [i for i, s in enumerate(scores) if extending.step(float(i), s)] == [0, 15]
