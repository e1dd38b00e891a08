"""The ``forecast`` rule kind: "disk full within 7 days".

Not sample-driven: every ``params.every`` seconds (wall clock) each forecast
rule reads the hourly averages of its series over ``params.lookback`` and
forecasts when each one crosses ``params.value``
(:func:`nazar_analyzer.capacity.forecast`, the same as ``GET /api/v1/forecast``).
An alert opens when the expected crossing is within ``horizon`` and resolves
only once it is further than ``recovery_horizon`` (default 1.5 x horizon), or
no crossing is expected at all: the hysteresis that keeps a wobbling trend
from flapping. A series without enough history gives no observation (neither
opens nor closes anything).

:class:`ForecastEvaluator` is pure; :class:`ForecastSweep` is the engine's
registration point (one call from its periodic sweep) and holds when each
rule is next due.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
from prometheus_client import Counter

from nazar_analyzer import store
from nazar_analyzer.capacity import Forecast, forecast, human_span
from nazar_analyzer.deploys import DeployIndex, Deploys
from nazar_analyzer.machine import FIRING, PENDING, Machine, Observation, Status, Transition
from nazar_analyzer.rules import Rule, series_subject
from nazar_analyzer.store import Subject
from nazar_common.db.hourly import HourlySeries, hourly_averages
from nazar_common.schemas.config import ForecastParams
from nazar_common.schemas.wire import AlertEventV1

log = logging.getLogger(__name__)

FORECASTS = Counter(
    "nazar_analyzer_forecasts_total", "Series forecasts made by forecast rules", ["status"]
)
#: Most series one forecast rule evaluates.
MAX_SERIES = 10_000


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class ForecastEvaluator:
    """Turns a series' forecast into an observation of the state machine."""

    def __init__(self, params: ForecastParams) -> None:
        self.params = params

    def forecast(self, times: list[float], values: list[float], now: float) -> Forecast:
        p = self.params
        return forecast(times, values, p.value, now, p.direction, horizon=p.horizon)

    def observe(self, f: Forecast, what: str) -> Observation | None:
        """``breach``: crossing expected within the horizon (or crossed);
        ``clear``: not expected within the recovery horizon. None without
        enough history."""
        p = self.params
        if f.status == "insufficient_data":
            return None
        breach = f.within(p.horizon)
        clear = not f.within(p.clear_after)
        horizon = human_span(p.horizon, None, None)
        if f.status == "crossing":
            assert f.crossing_at is not None and f.eta is not None
            lo = None if f.earliest is None else max(0.0, f.earliest - f.now)
            hi = None if f.latest is None else f.latest - f.now
            text = (f"{f.summary(what)}, around {_when(f.crossing_at)}"
                    f"{' (within ' + horizon + ')' if breach else ''}")
            contributors = [
                f"expected crossing: {_when(f.crossing_at)} (in {human_span(f.eta, lo, hi)})",
            ]
            if f.earliest is not None:
                contributors.append(
                    f"interval: {_when(f.earliest)} to "
                    f"{'never' if f.latest is None else _when(f.latest)}"
                )
        else:
            text = f.summary(what)
            contributors = []
        if f.slope_per_day is not None:
            contributors.append(
                f"trend: {f.slope_per_day:+.4g} per day from {f.level:.4g} "
                f"({f.points} hourly points)"
            )
        if f.shift_at is not None:
            contributors.append(f"a level shift (a clean-up?) at {_when(f.shift_at)} allowed for")
        high = p.value if p.direction == "above" else None
        low = p.value if p.direction == "below" else None
        return Observation(
            f.now, breach, f.level, clear, low, high, p.value,
            None if f.eta is None else f.eta / 86400.0, text, tuple(contributors),
        )

    def step(self, machine: Machine, status: Status, f: Forecast, what: str) -> list[Transition]:
        """Advance ``status`` by the forecast ``f``. Without enough history an
        open alert goes to ``nodata`` (the series stopped reporting, or was
        removed); a normal subject is left as it is."""
        obs = self.observe(f, what)
        if obs is None:
            if status.state in (PENDING, FIRING):
                return machine.no_data(status, f.now)
            return []
        return self.annotate(machine.step(status, obs), f)

    @staticmethod
    def annotate(transitions: list[Transition], f: Forecast) -> list[Transition]:
        """The predicted crossing and its interval as alert annotations."""
        if f.crossing_at is None:
            return transitions
        extra = [("predicted_crossing", _iso(f.crossing_at))]
        if f.earliest is not None:
            extra.append(("predicted_crossing_earliest", _iso(f.earliest)))
        if f.latest is not None:
            extra.append(("predicted_crossing_latest", _iso(f.latest)))
        return [replace(t, annotations=(*t.annotations, *extra)) if t.observation else t
                for t in transitions]


class ForecastSweep:
    """Evaluates the forecast rules that are due (called from the engine's sweep)."""

    def __init__(self) -> None:
        #: (rule id, version) -> wall-clock time of the next evaluation
        self.due: dict[tuple[int, int], float] = {}

    async def run(
        self, pool: asyncpg.Pool, rules: list[Rule], hosts: dict[str, dict[str, str]],
        deploys: DeployIndex, now: float,
    ) -> list[AlertEventV1]:
        live = {(r.id, r.version) for r in rules}
        self.due = {k: v for k, v in self.due.items() if k in live}
        events: list[AlertEventV1] = []
        for rule in rules:
            key = (rule.id, rule.version)
            if self.due.get(key, 0.0) > now:
                continue
            params = rule.spec.params
            assert isinstance(params, ForecastParams)
            self.due[key] = now + params.every
            try:
                events += await self._rule(pool, rule, params, hosts, deploys, now)
            except (asyncpg.PostgresError, OSError):
                self.due[key] = now  # try again on the next sweep
                raise
        return events

    async def _rule(
        self, pool: asyncpg.Pool, rule: Rule, params: ForecastParams,
        hosts: dict[str, dict[str, str]], deploys: DeployIndex, now: float,
    ) -> list[AlertEventV1]:
        assert rule.spec.metric is not None
        found, truncated = await hourly_averages(
            pool, start=now - params.lookback, end=now, metric=rule.spec.metric,
            host=rule.spec.selector.hosts or None, labels=rule.spec.match_series_labels,
            limit=MAX_SERIES,
        )
        if truncated:
            log.warning("forecast rule matches too many series; the first are evaluated",
                        extra={"rule": rule.name, "limit": MAX_SERIES})
        found = [s for s in found if rule.matches_host(s.host, hosts.get(s.host, {}))]
        if not found:
            return []
        ev = ForecastEvaluator(params)
        forecasts = await asyncio.to_thread(
            lambda: [ev.forecast(s.times, s.values, now) for s in found])
        subjects: dict[str, tuple[Subject, HourlySeries, Forecast]] = {}
        for s, f in zip(found, forecasts, strict=True):
            FORECASTS.labels(f.status).inc()
            subject = Subject(
                series_subject(s.id), s.host, s.id, s.metric, tuple(sorted(s.labels.items())),
                tuple(sorted(hosts.get(s.host, {}).items())),
            )
            subjects[subject.key] = (subject, s, f)
        events: list[AlertEventV1] = []
        machine = Machine(rule.spec.for_, rule.spec.keep_firing_for)
        async with pool.acquire() as conn:
            await store.ensure_states(conn, [(rule.id, s) for s, _, _ in subjects.values()])
            async with conn.transaction():
                states = await store.lock_states(
                    conn, [(rule.id, k) for k in subjects], skip_locked=True
                )
                for (_, key), status in states.items():
                    subject, series, f = subjects[key]
                    start = status.alert_id
                    transitions = ev.step(machine, status, f, f"{series.metric} on {series.host}")
                    near = Deploys.of(rule.spec, deploys, subject.host,
                                      dict(subject.host_labels)) if transitions else None
                    if near is not None:
                        transitions = near.annotate(transitions)
                    if transitions:
                        events += await store.record_transitions(
                            conn, rule, subject, status, transitions, start
                        )
                await store.save_states(conn, states)
        return events
