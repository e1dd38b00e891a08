"""The detector bank: batched updates of many series, compact state, restore."""

from __future__ import annotations

import time

import numpy as np
import pytest

from nazar_analyzer.detection import (
    COMPONENTS,
    CompositeConfig,
    CompositeDetector,
    DetectorBank,
    create_detector,
    detector_from_bytes,
    detector_to_bytes,
)
from nazar_analyzer.detection.composite import rounds

STEP = 60.0
T0 = 1_700_000_000.0


def _series(n_series: int, n: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = 50 + 10 * np.sin(np.arange(n) * 2 * np.pi * STEP / 86400.0)
    out = base + rng.normal(0, 2, size=(n_series, n))
    out[0, n // 2] += 60  # a spike in series 0
    out[1, n // 2 :] -= 25  # a level shift in series 1
    return out


def test_rounds_keep_the_order_of_each_series() -> None:
    idx = np.array([3, 1, 3, 3, 2, 1])
    parts = rounds(idx)
    assert [list(p) for p in parts] == [[0, 1, 4], [2, 5], [3]]
    assert rounds(np.array([], dtype=np.int64)) == []


def test_a_mixed_batch_equals_one_series_at_a_time() -> None:
    values = _series(3, 600)
    times = T0 + STEP * np.arange(600)
    # reference: each series alone, point by point
    ref = DetectorBank()
    ref_slots = ref.add_many(3)
    expected = np.zeros((3, 600))
    for k in range(600):
        res = ref.update(ref_slots, np.full(3, times[k]), values[:, k])
        expected[:, k] = res.score
    # the same points in batches of 50 points per series, interleaved and with
    # several points of a series in one batch
    bank = DetectorBank()
    slots = bank.add_many(3)
    got = np.zeros((3, 600))
    for start in range(0, 600, 50):
        ks = np.arange(start, start + 50)
        idx = np.repeat(slots, 50)
        perm = np.argsort(np.tile(ks, 3), kind="stable")  # time-major interleaving
        res = bank.update(idx[perm], np.tile(times[ks], 3)[perm], values[:, ks].ravel()[perm])
        got[np.repeat(np.arange(3), 50)[perm], np.tile(ks, 3)[perm]] = res.score
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert (got[0, 300] >= 0.5) and (got[1, 300:340] >= 0.5).any()


def test_exported_state_restores_a_series_exactly_and_quickly() -> None:
    values = _series(2, 900)
    times = T0 + STEP * np.arange(900)
    bank = DetectorBank()
    a, b = bank.add(), bank.add()
    for k in range(700):
        bank.update([a, b], [times[k]] * 2, values[:, k])
    blob = bank.export_state(a)
    assert len(blob) < 4096
    other = DetectorBank()
    started = time.perf_counter()
    for _ in range(100):
        c = other.import_state(blob)
        other.remove(c)
    per_restore = (time.perf_counter() - started) / 100
    assert per_restore < 1e-3, per_restore
    c = other.import_state(blob)
    r1 = bank.update(np.full(200, a), times[700:], values[0, 700:])
    r2 = other.update(np.full(200, c), times[700:], values[0, 700:])
    np.testing.assert_array_equal(r1.score, r2.score)
    np.testing.assert_array_equal(r1.high, r2.high)
    with pytest.raises(ValueError):
        other.import_state(b"garbage" + blob)


def test_checkpoint_restores_every_series_in_its_slot() -> None:
    values = _series(4, 400)
    times = T0 + STEP * np.arange(400)
    bank = DetectorBank(CompositeConfig(min_history=50))
    slots = bank.add_many(4)
    bank.remove(int(slots[2]))
    live = np.array([slots[0], slots[1], slots[3]])
    for k in range(300):
        bank.update(live, np.full(3, times[k]), values[[0, 1, 3], k])
    copy = DetectorBank.restore(bank.checkpoint())
    assert copy.config == bank.config and list(copy.slots) == list(bank.slots)
    for k in range(300, 400):
        r1 = bank.update(live, np.full(3, times[k]), values[[0, 1, 3], k])
        r2 = copy.update(live, np.full(3, times[k]), values[[0, 1, 3], k])
        np.testing.assert_array_equal(r1.score, r2.score)
    with pytest.raises(KeyError):
        copy.update([int(slots[2])], [times[0]], [1.0])


def test_slots_are_reused_and_the_bank_grows() -> None:
    bank = DetectorBank(capacity=2)
    slots = [bank.add() for _ in range(5)]
    assert len(set(slots)) == 5 and len(bank) == 5
    bank.remove(slots[1])
    assert bank.add() == slots[1]
    assert bank.points(slots[1]) == 0  # a reused slot starts afresh


def test_non_finite_values_are_ignored_and_not_learnt() -> None:
    bank = DetectorBank(CompositeConfig(min_history=20))
    s = bank.add()
    for k in range(50):
        bank.update([s], [T0 + k * STEP], [10.0 + (k % 3)])
    res = bank.update([s, s, s], [T0 + 50 * STEP, T0 + 51 * STEP, T0 + 52 * STEP],
                      [np.nan, np.inf, 11.0])
    assert list(res.is_anomaly) == [False, False, False]
    assert "not a finite number" in res.explanation(0)
    assert bank.points(s) == 51


def test_results_carry_band_component_and_explanation() -> None:
    det = create_detector("composite", {"min_history": 100})
    assert isinstance(det, CompositeDetector)
    rng = np.random.default_rng(5)
    for k in range(400):
        det.update(T0 + k * STEP, 20 + rng.normal())
    r = det.update(T0 + 400 * STEP, 80.0)
    assert r.is_anomaly and r.anomaly_score >= 0.5
    assert r.expected_low < r.expected_centre < r.expected_high < 80.0
    assert "spike" in r.explanation and "above the expected band" in r.explanation
    res = det.update_many(T0 + STEP * np.arange(401, 404), np.array([20.0, 20.5, 19.5]))
    assert COMPONENTS[int(res.component[0])] in COMPONENTS
    # the per-series form persists compactly and resumes identically
    blob = detector_to_bytes(det)
    clone = detector_from_bytes(blob)
    assert len(blob) < 4096
    a = det.update(T0 + 404 * STEP, 21.0)
    b = clone.update(T0 + 404 * STEP, 21.0)
    assert a == b


def test_direction_and_components_restrict_what_alarms() -> None:
    rng = np.random.default_rng(9)
    values = 20 + rng.normal(size=500)
    values[450] = -40.0  # a dip
    for cfg, expect in (({}, True), ({"direction": "above"}, False),
                        ({"components": ["spike"]}, False)):
        bank = DetectorBank(CompositeConfig(**cfg))
        s = bank.add()
        res = bank.update(np.full(500, s), T0 + STEP * np.arange(500), values)
        assert bool(res.is_anomaly[450]) is expect, cfg


def test_alarm_gate_persistence_and_refractory() -> None:
    rng = np.random.default_rng(2)
    values = 20 + rng.normal(size=600)
    values[400:410] = 60.0
    times = T0 + STEP * np.arange(600)
    bank = DetectorBank(CompositeConfig(alarm_window=3, alarm_count=2))
    s = bank.add()
    res = bank.update(np.full(600, s), times, values)
    assert not res.is_anomaly[400] and res.is_anomaly[401]  # 2 of the last 3
    bank = DetectorBank(CompositeConfig(refractory_s=3600.0))
    s = bank.add()
    res = bank.update(np.full(600, s), times, values)
    assert res.is_anomaly[400] and res.is_anomaly[401:420].sum() == 0  # one per incident


def test_a_snapshot_of_another_version_is_not_restored() -> None:
    from nazar_analyzer import detectors

    det = create_detector("composite")
    for k in range(20):
        det.update(T0 + k * STEP, float(k % 4))
    blob = detector_to_bytes(det)
    assert detectors.loadable(blob)
    assert not detectors.loadable(blob[:-8])  # a shorter state row: another layout
    assert not detectors.loadable(blob.replace(b'"margin"', b'"margim"'))  # other settings
