"""burn_rate observations: both windows of a pair must burn (pure)."""

from __future__ import annotations

from nazar_analyzer import burnrate
from nazar_common.schemas.config import BurnRateParams, RuleSpec
from nazar_common.schemas.slo import Measure, SLOSpec

SLO = SLOSpec.model_validate({"name": "api", "objective": 99.9,
                              "indicator": {"kind": "availability"}})
PARAMS = BurnRateParams(slo="api")


def _measures(errors: dict[float, float]) -> dict[float, Measure]:
    """Error ratios per window as measures of 100 000 events."""
    return {w: Measure(100_000 * (1 - errors.get(w, 0.0)), 100_000)
            for w in burnrate.windows(PARAMS)}


def test_default_windows_are_the_workbook_pairs() -> None:
    assert burnrate.windows(PARAMS) == [21600, 3600, 1800, 300]
    assert [burnrate.label(w) for w in burnrate.windows(PARAMS)] == ["6h", "1h", "30m", "5m"]
    rule = RuleSpec.model_validate({"name": "r", "params": {"kind": "burn_rate", "slo": "api"}})
    assert rule.metric is None


def test_fires_only_when_both_windows_of_a_pair_burn() -> None:
    fast = burnrate.observe(PARAMS, SLO, _measures({3600: 0.015, 300: 0.02}), 0.0)
    assert fast.breach and fast.high == 14.4 and fast.value is not None
    assert "15x over 1h and 20x over 5m (alert at 14.4x)" in (fast.explanation or "")
    long_only = burnrate.observe(PARAMS, SLO, _measures({3600: 0.015, 300: 0.001}), 0.0)
    assert not long_only.breach  # stopped burning: the short window clears it
    slow = burnrate.observe(PARAMS, SLO, _measures({21600: 0.007, 1800: 0.007}), 0.0)
    assert slow.breach and slow.high == 6.0
    quiet = burnrate.observe(PARAMS, SLO, {w: Measure(0, 0) for w in burnrate.windows(PARAMS)},
                             0.0)
    assert not quiet.breach and "no events" in (quiet.explanation or "")
