"""Availability from presence and SLO arithmetic (pure)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from nazar_common.schemas.slo import Measure, Presence, SLOSpec, availability, status


def test_silences_longer_than_the_gap_are_outages_clipped_to_the_period() -> None:
    p = Presence("h", first=55.0, last=950.0, silences=[(100.0, 500.0), (600.0, 650.0)])
    a = availability(p, 0.0, 1000.0, gap=60.0)
    # leading 55 s: not past the gap; 600-650: 50 s, not an outage; trailing 50 s: neither
    assert [(o.start, o.end, o.ongoing) for o in a.outages] == [(100.0, 500.0, False)]
    assert a.out()["uptime_percent"] == pytest.approx(60.0)
    assert a.out()["mttr_seconds"] == 400.0
    b = availability(Presence("h", 300.0, 700.0), 0.0, 1000.0, gap=60.0)
    assert [(o.start, o.end, o.ongoing) for o in b.outages] == [
        (0.0, 300.0, False), (700.0, 1000.0, True)]
    assert b.out()["mttr_seconds"] == 300.0  # the ongoing outage has not recovered


def test_monitoring_starts_when_the_host_appears_and_clips_to_windows() -> None:
    a = availability(Presence("h", 500.0, 990.0, [(600.0, 800.0)]), 0.0, 1000.0, 60.0, 500.0)
    assert a.monitored == 500.0 and a.downtime == 200.0
    c = a.clip(700.0, 1000.0)
    assert c.monitored == 300.0 and c.downtime == 100.0
    assert a.clip(0.0, 400.0).monitored == 0.0
    never = availability(Presence("h", None, None), 0.0, 100.0, 10.0)
    assert never.out()["uptime_percent"] == 0.0 and never.outages[0].ongoing


def test_error_budget_and_burn_rates() -> None:
    spec = SLOSpec.model_validate({"name": "api", "objective": 99.9, "window": "30d",
                                   "indicator": {"kind": "ratio", "good": {"metric": "ok"},
                                                 "total": {"metric": "all"}}})
    assert spec.window == 30 * 86400 and spec.budget == pytest.approx(0.001)
    st = status(spec, Measure(99_950, 100_000), {"1h": Measure(980, 1000),
                                                 "5m": Measure(0, 0)})
    assert st["error_budget_remaining"] == pytest.approx(0.5)
    assert st["attained"] is True and st["sli_percent"] == pytest.approx(99.95)
    assert st["burn_rates"] == {"1h": pytest.approx(20.0), "5m": None}
    empty = status(spec, Measure(0, 0), {})
    assert empty["attained"] is None and empty["error_budget_remaining"] is None
    over = status(spec, Measure(99_000, 100_000), {})
    assert over["attained"] is False and over["error_budget_remaining"] == pytest.approx(-9.0)


@pytest.mark.parametrize("body", [
    {"objective": 100},
    {"objective": 99, "window": "10s"},
    {"objective": 99, "indicator": {"kind": "ratio", "good": {"metric": "bad metric"},
                                    "total": {"metric": "t"}}},
    {"objective": 99, "indicator": {"kind": "availability", "gap": "2d"}},
])
def test_invalid_slos_are_refused(body: dict[str, object]) -> None:
    raw = {"name": "x", "indicator": {"kind": "availability"}, **body}
    with pytest.raises(ValidationError):
        SLOSpec.model_validate(raw)
