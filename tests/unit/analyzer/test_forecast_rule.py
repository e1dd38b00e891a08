"""The forecast rule kind's evaluator and the state machine (pure)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from nazar_analyzer.capacity import DAY, HOUR, Forecast
from nazar_analyzer.forecasting import ForecastEvaluator
from nazar_analyzer.machine import Machine, Status
from nazar_common.schemas.config import ForecastParams, RuleSpec


def crossing_in(days: float, now: float = 0.0) -> Forecast:
    at = now + days * DAY
    return Forecast("crossing", 90.0, "above", now, 200, crossing_at=at,
                    earliest=at - 0.5 * DAY, latest=at + 0.5 * DAY, level=70.0,
                    slope_per_day=20 / days)


def run(params: ForecastParams, etas: list[float | None]) -> list[tuple[str, str]]:
    ev = ForecastEvaluator(params)
    machine, status, out = Machine(), Status(), []
    for i, eta in enumerate(etas):
        now = i * 6 * HOUR
        f = (crossing_in(eta, now) if eta is not None else
             Forecast("not_crossing", 90.0, "above", now, 200, level=50, slope_per_day=0.0,
                      reason="the trend is flat (0 per day)"))
        obs = ev.observe(f, "disk.used_percent on web-1")
        assert obs is not None
        out += [(t.previous, t.state) for t in machine.step(status, obs)]
    return out


WOBBLE = [8.0, 6.8, 7.2, 6.9, 7.4, 6.7, 7.5, 6.6, 7.3]


def test_hysteresis_keeps_a_wobbling_trend_from_flapping() -> None:
    params = ForecastParams(value=90, horizon="7d")
    assert params.clear_after == pytest.approx(10.5 * DAY)
    assert run(params, WOBBLE) == [("normal", "firing")]
    # without hysteresis the same trend would flap on every wobble
    flappy = ForecastParams(value=90, horizon="7d", recovery_horizon="7d")
    assert len(run(flappy, WOBBLE)) == 8
    # it resolves once the crossing is beyond the recovery horizon, or gone
    assert run(params, [*WOBBLE, 9.0, 11.0]) == [("normal", "firing"), ("firing", "resolved")]
    assert run(params, [*WOBBLE, None]) == [("normal", "firing"), ("firing", "resolved")]


def test_explanation_and_annotations() -> None:
    ev = ForecastEvaluator(ForecastParams(value=90, horizon="7d"))
    f = crossing_in(6.0)
    obs = ev.observe(f, "disk.used_percent on web-1")
    assert obs is not None and obs.breach and not obs.cleared
    assert obs.explanation is not None
    assert obs.explanation.startswith(
        "disk.used_percent on web-1 is expected to reach 90 in 6.0 days ± 0.5")
    assert "within 7.0 days" in obs.explanation
    assert any(c.startswith("expected crossing: 1970-01-07 00:00 UTC") for c in obs.contributors)
    tr = ev.annotate(Machine().step(Status(), obs), f)
    assert dict(tr[0].annotations)["predicted_crossing"] == "1970-01-07T00:00:00+00:00"
    assert "predicted_crossing_latest" in dict(tr[0].annotations)
    # too little history: no observation at all (neither opens nor closes)
    assert ev.observe(Forecast("insufficient_data", 90, "above", 0.0, 3), "x") is None


def test_real_forecast_through_the_evaluator() -> None:
    """7 days from 40 % at +5 % a day: 75 % now, 90 % in 3 days."""
    t = np.arange(0, 7 * DAY, HOUR) + HOUR / 2
    now = 7 * DAY
    values = list(40 + 5 * t / DAY)
    soon = ForecastEvaluator(ForecastParams(value=90, horizon="4d"))
    f = soon.forecast(list(t), values, now)
    obs = soon.observe(f, "disk")
    assert f.status == "crossing" and f.eta == pytest.approx(3 * DAY, rel=0.01)
    assert obs is not None and obs.breach and obs.value == pytest.approx(75, abs=0.01)
    later = ForecastEvaluator(ForecastParams(value=90, horizon="2d"))
    obs = later.observe(later.forecast(list(t), values, now), "disk")
    assert obs is not None and not obs.breach and not obs.cleared  # 3 d < 1.5 x 2 d


@pytest.mark.parametrize(
    "params",
    [
        {"kind": "forecast"},  # no value
        {"kind": "forecast", "value": 90, "horizon": "7d", "recovery_horizon": "1d"},
        {"kind": "forecast", "value": 90, "lookback": "1h"},
        {"kind": "forecast", "value": 90, "horizon": "2y"},
        {"kind": "forecast", "value": 90, "direction": "both"},
    ],
)
def test_invalid_params(params: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RuleSpec.model_validate({"name": "disk-full", "metric": "disk.used_percent",
                                 "params": params})


def test_needs_a_metric_and_is_never_held() -> None:
    with pytest.raises(ValidationError, match="needs a metric"):
        RuleSpec.model_validate({"name": "x", "params": {"kind": "forecast", "value": 1}})
    with pytest.raises(ValidationError, match="hold_for"):
        RuleSpec.model_validate({"name": "x", "metric": "m", "params": {
            "kind": "forecast", "value": 1}, "deploys": {"hold_for": "1h"}})


def test_an_open_alert_without_history_goes_to_nodata() -> None:
    ev = ForecastEvaluator(ForecastParams(value=90, horizon="7d"))
    machine, status = Machine(), Status()
    assert [t.state for t in ev.step(machine, status, crossing_in(3.0), "disk")] == ["firing"]
    gone = Forecast("insufficient_data", 90.0, "above", 3600.0, 0, reason="0 hourly points")
    assert [(t.previous, t.state) for t in ev.step(machine, status, gone, "disk")] == [
        ("firing", "nodata")]
    assert ev.step(machine, status, gone, "disk") == []
    # back with a crossing still due: firing again, the same alert
    assert [(t.previous, t.state) for t in ev.step(machine, status, crossing_in(2.0, 7200.0),
                                                   "disk")] == [("nodata", "firing")]
    # a subject that never fired stays quiet without history
    assert ev.step(Machine(), Status(), gone, "disk") == []
