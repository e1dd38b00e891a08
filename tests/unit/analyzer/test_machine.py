"""The alert state machine and the threshold evaluator (pure)."""

from __future__ import annotations

from nazar_analyzer.evaluators import ThresholdEvaluator
from nazar_analyzer.machine import Machine, Observation, Status
from nazar_common.schemas.config import ThresholdParams


def run(machine: Machine, ev: ThresholdEvaluator, points: list[tuple[float, float]]):
    status = Status()
    out = []
    for ts, v in points:
        out += [(t.previous, t.state, t.at) for t in machine.step(status, ev.observe(ts, v))]
    return status, out


def test_fires_after_for_and_resolves() -> None:
    ev = ThresholdEvaluator(ThresholdParams(comparator=">", value=90), "cpu")
    pts = [(0, 50), (10, 95), (20, 96), (30, 97), (40, 50), (50, 40)]
    status, trs = run(Machine(for_=20), ev, pts)
    assert trs == [("normal", "pending", 10), ("pending", "firing", 30), ("firing", "resolved", 40)]
    assert status.state == "normal"


def test_pending_cancelled_when_condition_clears() -> None:
    ev = ThresholdEvaluator(ThresholdParams(comparator=">", value=90), "cpu")
    _, trs = run(Machine(for_=60), ev, [(0, 95), (10, 95), (20, 10), (30, 10)])
    assert trs == [("normal", "pending", 0), ("pending", "normal", 20)]


def test_for_zero_fires_at_once() -> None:
    ev = ThresholdEvaluator(ThresholdParams(comparator="<", value=1), "free")
    _, trs = run(Machine(), ev, [(0, 5), (1, 0.5), (2, 3)])
    assert trs == [("normal", "firing", 1), ("firing", "resolved", 2)]


def test_hysteresis_holds_until_recovery_level() -> None:
    ev = ThresholdEvaluator(ThresholdParams(comparator=">", value=90, recovery_value=70), "cpu")
    pts = [(0, 95), (10, 85), (20, 75), (30, 71), (40, 69)]
    _, trs = run(Machine(), ev, pts)
    assert trs == [("normal", "firing", 0), ("firing", "resolved", 40)]


def test_keep_firing_for() -> None:
    ev = ThresholdEvaluator(ThresholdParams(comparator=">", value=90), "cpu")
    pts = [(0, 95), (10, 10), (20, 10), (30, 10), (40, 10)]
    _, trs = run(Machine(keep_firing_for=25), ev, pts)
    assert trs == [("normal", "firing", 0), ("firing", "resolved", 30)]


def test_nodata_keeps_firing_alert_open_and_recovers() -> None:
    m = Machine()
    status = Status()
    m.step(status, Observation(0, True, 1.0))
    assert [t.state for t in m.no_data(status, 100)] == ["nodata"]
    assert status.state == "nodata"
    assert m.no_data(status, 200) == []
    trs = m.step(status, Observation(300, True, 1.0))
    assert [(t.previous, t.state) for t in trs] == [("nodata", "firing")]
    trs = m.step(status, Observation(310, False, 0.0))
    assert [(t.previous, t.state) for t in trs] == [("firing", "resolved")]


def test_nodata_cancels_pending_and_normal_goes_silent() -> None:
    m = Machine(for_=100)
    status = Status()
    m.step(status, Observation(0, True, 1.0))
    assert [(t.previous, t.state) for t in m.no_data(status, 50)] == [("pending", "normal")]
    assert status.state == "nodata"
    quiet = Status()
    assert m.no_data(quiet, 50) == [] and quiet.state == "nodata"
    assert m.step(quiet, Observation(60, False, 0.0)) == []
    assert quiet.state == "normal"


def test_close_resolves_open_alert() -> None:
    m = Machine()
    status = Status()
    m.step(status, Observation(0, True, 1.0))
    trs = m.close(status, 5, "rule deleted")
    assert [(t.previous, t.state) for t in trs] == [("firing", "resolved")]
    assert status.state == "normal"
