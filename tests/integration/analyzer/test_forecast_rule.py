"""The ``forecast`` rule kind through the real analyzer: a week of disk
history is written and rolled up, a rule "disk 90 % full within 4 days" is
put through the API, and the analyzer's sweep opens (and later resolves) the
alert with the predicted crossing in its explanation and annotations."""

from __future__ import annotations

import time
from datetime import datetime

from tests.integration.analyzer.conftest import Env, wait_for
from tests.integration.query.test_query_api import Row, insert_direct

DAY = 86400.0


async def test_forecast_rule_fires_explains_and_resolves(env: Env) -> None:
    now = time.time()
    start = now - 7 * DAY
    rows: list[Row] = []
    t = start
    while t < now - 60:
        # fc-1: 40 % a week ago, +5 % a day: 75 % now, 90 % in 3 days
        rows.append(("fc-1", "disk.used_percent", {"mount": "/"}, t, 40 + 5 * (t - start) / DAY))
        rows.append(("fc-2", "disk.used_percent", {"mount": "/"}, t, 50.0))
        t += 600
    await insert_direct(env.database_url, rows)
    expected = start + 10 * DAY

    rule = {
        "name": "disk-full-soon",
        "metric": "disk.used_percent",
        "params": {"kind": "forecast", "value": 90, "horizon": "4d", "every": "1s"},
        "severity": "warning",
    }
    await env.put_rule(rule)
    [fired] = await env.collector.wait("disk-full-soon", ["firing"], timeout=30)
    assert fired.state == "firing" and fired.host == "fc-1" and fired.kind == "forecast"
    assert fired.explanation is not None
    assert fired.explanation.startswith(
        "disk.used_percent on fc-1 is expected to reach 90 in 3.0 days"), fired.explanation
    assert "(within 4.0 days)" in fired.explanation
    predicted = datetime.fromisoformat(fired.annotations["predicted_crossing"]).timestamp()
    assert abs(predicted - expected) < 0.05 * (expected - now)
    assert fired.annotations["predicted_crossing_earliest"] <= fired.annotations[
        "predicted_crossing"] <= fired.annotations["predicted_crossing_latest"]
    assert any(c.startswith("trend: +5 per day") for c in fired.contributors), fired.contributors
    assert fired.value is not None and abs(fired.value - 75) < 1
    # many more sweeps: still one alert (the flat disk never fires)
    sweeps = env.analyzer.forecasts.due
    first = dict(sweeps)
    await wait_for(lambda: _later(env, first), 10, "more forecast sweeps")
    assert [e.state for e in env.collector.of("disk-full-soon")] == ["firing"]

    # the same trend against 150 %: 15 days away, past the recovery horizon (6 days)
    await env.put_rule({**rule, "params": {**rule["params"], "value": 150}})
    events = await env.collector.wait("disk-full-soon", ["firing", "resolved"], timeout=30)
    assert [e.state for e in events] == ["firing", "resolved"]
    assert events[1].host == "fc-1" and events[1].alert_id == fired.alert_id


async def _later(env: Env, first: dict[tuple[int, int], float]) -> bool:
    due = env.analyzer.forecasts.due
    return bool(due) and all(due.get(k, 0) > v + 2 for k, v in first.items())
