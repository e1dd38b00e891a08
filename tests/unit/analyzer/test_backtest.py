"""Backtest evaluation of one series (pure): same machine as the service."""

from __future__ import annotations

from nazar_analyzer import detectors
from nazar_analyzer.backtest import SeriesHistory, evaluate_series, pick_resolution
from nazar_analyzer.rules import Rule
from nazar_common.schemas.config import RuleSpec


def _rule(**spec: object) -> Rule:
    return Rule(0, "r", 0, RuleSpec.model_validate({"name": "r", **spec}))


def test_threshold_backtest_respects_range() -> None:
    rule = _rule(metric="m", params={"kind": "threshold", "value": 5})
    h = SeriesHistory(1, "h", "m", {}, [0, 10, 20, 30, 40], [9, 9, 1, 9, 1])
    trs, n = evaluate_series(rule, h, 15, 100, detectors.Limits(), 10)
    assert n == 3
    assert [(t.previous, t.state, t.at) for t in trs] == [
        ("normal", "firing", 30), ("firing", "resolved", 40)]


def test_absence_backtest_finds_gaps() -> None:
    rule = _rule(params={"kind": "absence", "after": 60})
    times = [0, 30, 60, 300, 330, 360]
    h = SeriesHistory(None, "h", None, {}, times, [0.0] * len(times))
    trs, _ = evaluate_series(rule, h, 0, 1000, detectors.Limits(), 10)
    states = [(t.previous, t.state, round(t.at)) for t in trs]
    assert states == [("normal", "firing", 120), ("firing", "resolved", 300),
                      ("normal", "firing", 420)]


def test_pick_resolution() -> None:
    assert pick_resolution("auto", 3600) == "raw"
    assert pick_resolution("auto", 10 * 86400) == "1m"
    assert pick_resolution("auto", 90 * 86400) == "1h"
    assert pick_resolution("1h", 60) == "1h"
