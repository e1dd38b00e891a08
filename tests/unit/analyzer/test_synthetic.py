"""The synthetic anomaly suite (bench/synthetic.py) through the composite detector."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

import synthetic


def test_the_suite_covers_every_anomaly_type_on_every_base() -> None:
    cases = synthetic.suite(seeds=1)
    kinds = {(c.base, c.anomaly) for c in cases}
    for base in synthetic.BASES:
        assert (base, None) in kinds  # a clean control
        for anomaly in synthetic.ANOMALIES:
            assert ((base, anomaly) in kinds) == synthetic.applies(base, anomaly)
    spike = synthetic.make_case("flat", "spike", 0)
    control = synthetic.make_case("flat", None, 0)
    assert spike.values[spike.start] - np.median(spike.values) > 20
    assert np.all(np.diff(synthetic.make_case("counter", None, 0).values) != np.inf)
    assert control.start == control.values.size


def test_guaranteed_types_are_caught_within_their_bound_and_controls_stay_quiet() -> None:
    outcomes, _ = synthetic.run_suite(synthetic.suite(seeds=3))
    problems = []
    for o in outcomes:
        base, anomaly = o.case.base, o.case.anomaly
        if anomaly is None:
            if base in synthetic.QUIET_CONTROLS and o.alarms.size:
                problems.append(f"{o.case.name}: {o.alarms.size} alarms on a clean control")
        elif anomaly in synthetic.GUARANTEED[base] and not o.caught:
            problems.append(
                f"{o.case.name}: delay {o.delay} (bound {synthetic.DELAY_BOUND[anomaly]}), "
                f"{o.early} alarms before it"
            )
    assert not problems, "\n".join(problems)
    # and the alarm names the component that fired
    first = {o.case.name: o.component for o in outcomes if o.caught}
    assert first["flat/spike/0"] == "spike" and first["flat/dip/0"] == "dip"
    assert first["flat/flatline/0"] == "flatline"
    assert first["daily/seasonal_break/0"] != ""


def test_no_clean_control_alarms_on_any_of_ten_seeds() -> None:
    controls = [
        synthetic.make_case(base, None, seed)
        for seed in range(10)
        for base in synthetic.BASES
    ]
    outcomes, _ = synthetic.run_suite(controls)
    alarming = {o.case.name: o.alarms[:3].tolist() for o in outcomes if o.alarms.size}
    assert not alarming, alarming


def test_at_one_point_a_minute_the_same_types_are_caught_in_the_same_time() -> None:
    """The suite sampled every minute (bounds in time, the detector told the
    interval as the analyzer tells it): the guaranteed types of that step are
    caught and the clean controls stay nearly quiet. Told nothing, the
    detector's time constants in points would follow a daily cycle at this
    rate (tests/unit/analyzer/test_composite_regimes.py)."""
    cases = synthetic.suite(seeds=2, step=60.0)
    outcomes, _ = synthetic.run_suite(cases)
    problems = []
    for o in outcomes:
        base, anomaly = o.case.base, o.case.anomaly
        if anomaly in synthetic.GUARANTEED_FINE[base] and not o.caught:
            problems.append(
                f"{o.case.name}: delay {o.delay} (bound {synthetic.bound(anomaly, 60.0)}), "
                f"{o.early} alarms before it"
            )
    assert not problems, "\n".join(problems)
    controls = [o for o in outcomes if o.case.anomaly is None]
    assert len(controls) == 10
    assert all(o.alarms.size <= 1 for o in controls)
    assert sum(o.alarms.size for o in controls) <= 1
