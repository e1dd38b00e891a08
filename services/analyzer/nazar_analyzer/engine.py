"""Evaluation of sample batches and periodic sweeps (absence, no data).

High availability rests on the database, not on which replica gets which
message:

* every (rule, subject) has a state row; a batch locks the rows it touches
  (``SELECT ... FOR UPDATE``, in one global order) and commits the new
  states, the alert rows, their transitions, the outbox events and the batch
  id (idempotency) in ONE transaction; the broker message is acknowledged
  only after that commit;
* detectors live in memory as a cache. A detector is used only if its
  position (time of the last point it consumed) equals the state row's
  ``last_ts``; if another replica advanced the series meanwhile, the missing
  points are replayed from the samples table (they were committed before the
  batch was published); if it is ahead (a rolled-back batch) it is dropped
  and rebuilt from its last snapshot plus a replay, or warmed up from history.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
import orjson
from prometheus_client import Counter, Gauge, Histogram

from nazar_analyzer import burnrate, detectors, store
from nazar_analyzer.deploys import MAX_EVENTS, TOLERANCE, DeployIndex, Deploys, HeldMachine
from nazar_analyzer.evaluators import (
    DetectorEvaluator,
    ThresholdEvaluator,
    absence_observation,
    estimate_interval,
    new_detector_evaluator,
    relearn,
    step_many,
    warm_many,
)
from nazar_analyzer.forecasting import ForecastSweep
from nazar_analyzer.machine import Machine, Status, Transition
from nazar_analyzer.rules import Rule, RuleSet, host_subject, series_subject
from nazar_analyzer.settings import AnalyzerSettings
from nazar_analyzer.store import EPS, Subject
from nazar_common.schemas.config import BurnRateParams, RuleSpec
from nazar_common.schemas.slo import SLOSpec
from nazar_common.schemas.wire import AlertEventV1, SampleBatchV1

log = logging.getLogger(__name__)

SAMPLES_EVALUATED = Counter(
    "nazar_analyzer_samples_evaluated_total", "Samples evaluated against rules (per rule)"
)
TRANSITIONS = Counter("nazar_analyzer_transitions_total", "Alert state transitions", ["state"])
BATCH_SECONDS = Histogram(
    "nazar_analyzer_batch_seconds", "Time to evaluate and commit one sample batch"
)
DETECTORS = Gauge("nazar_analyzer_detectors", "Detectors held in memory")
REPLAYED = Counter(
    "nazar_analyzer_points_replayed_total",
    "Points replayed from storage to bring a detector up to date (warm-up, other replicas)",
)
DEPLOY_HOLDS = Counter(
    "nazar_analyzer_deploy_holds_total",
    "Observations that would have opened an alert within a deploy's grace period (held)",
)
RELEARNS = Counter(
    "nazar_analyzer_detector_relearns_total",
    "Detectors reset to re-learn after a deploy (rules with deploys.hold_for)",
)
EVENTS = Gauge("nazar_analyzer_events", "Recent events (deploys...) held in memory")
BURN_RATE_SECONDS = Histogram(
    "nazar_analyzer_burn_rate_seconds",
    "Time to measure an SLO's windows and evaluate one burn_rate rule",
)


@dataclass
class BatchOutcome:
    duplicate: bool = False
    pairs: int = 0
    evaluated: int = 0
    events: list[AlertEventV1] = field(default_factory=list)


@dataclass
class _Pair:
    rule: Rule
    subject: Subject
    times: list[float]
    values: list[float]


@dataclass
class _Need:
    """A detector to bring to its state row's position ``db_last``."""

    rule: Rule
    subject: Subject
    db_last: float | None
    first: float  # time of the batch's first point
    #: The deploy reset it must have learnt from (rules with deploys.hold_for).
    reset: float | None = None
    interval: float | None = None  # of the detector it replaces, if any

    @property
    def until(self) -> float:
        return self.db_last if self.db_last is not None else self.first - 2 * EPS


class Engine:
    def __init__(self, pool: asyncpg.Pool | None, settings: AnalyzerSettings) -> None:
        self.pool = pool
        self.settings = settings
        self.limits = detectors.Limits(max_points=settings.analyzer_max_history_points)
        self.rules = RuleSet()
        self.hosts: dict[str, dict[str, str]] = {}
        #: Recent events (deploys...), for rules with ``deploys``.
        self.deploys = DeployIndex()
        #: SLOs by name, for burn_rate rules; when each such rule was last evaluated.
        self.slos: dict[str, SLOSpec] = {}
        self._burn_rate_at: dict[int, float] = {}
        self._thresholds: dict[tuple[int, int], ThresholdEvaluator] = {}
        self._detectors: OrderedDict[tuple[int, int], DetectorEvaluator] = OrderedDict()
        self._evicted: list[DetectorEvaluator] = []
        #: composite detectors of one configuration share a bank (batched updates)
        self.banks = detectors.BankPool()
        #: CPU work (detector updates, snapshots) happens in a worker thread,
        #: one section at a time, so a detector is never used by two threads.
        self.cpu = asyncio.Lock()
        #: forecast rules: when each is next due
        self.forecasts = ForecastSweep()

    # -- configuration -----------------------------------------------------

    async def reload(self) -> None:
        assert self.pool is not None
        rules = await store.load_rules(self.pool)
        hosts = await store.load_hosts(self.pool)
        self.slos = await store.load_slos(self.pool)
        await self.reload_events()
        old = self.rules
        self.rules = RuleSet.build(rules, old.generation + 1)
        self.hosts = hosts
        live = {(r.id, r.version) for r in self.rules.rules.values()}
        self._thresholds = {k: v for k, v in self._thresholds.items() if k in live}
        for key in [k for k, d in self._detectors.items() if (k[0], d.rule_version) not in live]:
            del self._detectors[key]
        DETECTORS.set(len(self._detectors))

    async def reload_events(self) -> None:
        """Recent events, from the database (on NOTIFY nazar_events and with every reload)."""
        assert self.pool is not None
        events = await store.load_events(
            self.pool, self.settings.analyzer_events_lookback, MAX_EVENTS
        )
        self.deploys = DeployIndex(events)
        EVENTS.set(len(self.deploys))

    def deploys_of(self, rule: Rule, subject: Subject) -> Deploys | None:
        """The deploys that concern ``rule`` on ``subject``'s host, if the rule cares."""
        if rule.spec.deploys is None:
            return None
        return Deploys.of(rule.spec, self.deploys, subject.host, dict(subject.host_labels))

    def machine(self, rule: Rule) -> Machine:
        return Machine(rule.spec.for_, rule.spec.keep_firing_for)

    def threshold(self, rule: Rule) -> ThresholdEvaluator:
        key = (rule.id, rule.version)
        ev = self._thresholds.get(key)
        if ev is None:
            ev = self._thresholds[key] = ThresholdEvaluator(
                rule.spec.params, rule.spec.metric  # type: ignore[arg-type]
            )
        return ev

    # -- the sample path ---------------------------------------------------

    def pairs_of(self, batch: SampleBatchV1) -> list[_Pair]:
        """(rule, series) pairs of a batch with their points in time order."""
        per_series: dict[int, tuple[list[float], list[float]]] = {}
        for i, t, v in zip(batch.series_index, batch.times, batch.values, strict=True):
            times, values = per_series.setdefault(i, ([], []))
            times.append(t)
            values.append(v)
        pairs: list[_Pair] = []
        for i, (times, values) in per_series.items():
            ref = batch.series[i]
            if ref.id is None or not self.rules.has_metric(ref.metric):
                continue
            host_labels = batch.hosts.get(ref.host) or self.hosts.get(ref.host, {})
            rules = self.rules.for_series(ref.id, ref.metric, ref.host, ref.labels, host_labels)
            if not rules:
                continue
            if any(b < a for a, b in itertools.pairwise(times)):
                order = sorted(range(len(times)), key=times.__getitem__)
                times = [times[j] for j in order]
                values = [values[j] for j in order]
            subject = Subject(
                series_subject(ref.id), ref.host, ref.id, ref.metric,
                tuple(sorted(ref.labels.items())), tuple(sorted(host_labels.items())),
            )
            for rule in rules:
                pairs.append(_Pair(rule, subject, times, values))
        return pairs

    async def handle_batch(self, batch: SampleBatchV1) -> BatchOutcome:
        assert self.pool is not None
        pairs = self.pairs_of(batch)
        outcome = BatchOutcome(pairs=len(pairs))
        if not pairs:
            return outcome  # nothing to evaluate, nothing to remember
        started = time.perf_counter()
        touched = [(p.rule.id, p.subject.series_id) for p in pairs if p.rule.kind != "threshold"]
        try:
            async with self.pool.acquire() as conn:
                await store.ensure_states(conn, [(p.rule.id, p.subject) for p in pairs])
                async with conn.transaction():
                    outcome = await self._in_transaction(conn, batch, pairs, outcome)
        except BaseException:
            for key in touched:  # they may hold uncommitted points
                self._detectors.pop(key, None)  # type: ignore[arg-type]
            raise
        if outcome.duplicate:
            return outcome
        SAMPLES_EVALUATED.inc(outcome.evaluated)
        for event in outcome.events:
            TRANSITIONS.labels(event.state).inc()
        BATCH_SECONDS.observe(time.perf_counter() - started)
        DETECTORS.set(len(self._detectors))
        return outcome

    async def _in_transaction(
        self, conn: asyncpg.Connection, batch: SampleBatchV1, pairs: list[_Pair],
        outcome: BatchOutcome,
    ) -> BatchOutcome:
        if not await store.mark_processed(conn, batch.id):
            outcome.duplicate = True
            return outcome
        states = await store.lock_states(
            conn, [(p.rule.id, p.subject.key) for p in pairs]
        )
        starts = {k: s.alert_id for k, s in states.items()}
        await self._sync_detectors(conn, pairs, states)
        async with self.cpu:
            results = await asyncio.to_thread(self._evaluate, pairs, states)
        outcome.evaluated = sum(n for _, _, n in results)
        for pair, transitions, _ in results:
            if transitions:
                key = (pair.rule.id, pair.subject.key)
                outcome.events += await store.record_transitions(
                    conn, pair.rule, pair.subject, states[key], transitions, starts[key]
                )
        await store.save_states(conn, states)
        return outcome

    def _evaluate(
        self, pairs: Sequence[_Pair], states: dict[tuple[int, str], Status]
    ) -> list[tuple[_Pair, list[Transition], int]]:
        out: list[tuple[_Pair, list[Transition], int]] = []
        batched: list[tuple[int, DetectorEvaluator, Machine, Status, list[float], list[float]]] = []
        for pair in pairs:
            rule = pair.rule
            status = states[(rule.id, pair.subject.key)]
            machine = self.machine(rule)
            deploys = self.deploys_of(rule, pair.subject)
            if rule.kind != "threshold":
                assert pair.subject.series_id is not None
                key = (rule.id, pair.subject.series_id)
                ev = self._detectors[key]
                if deploys is not None and deploys.holds:
                    # a deploy: at its reset time the detector re-learns; in its
                    # grace period nothing opens (HeldMachine). Rare: one by one.
                    held = HeldMachine(machine.for_, machine.keep_firing_for, deploys=deploys)
                    transitions, n = self._step_held(key, rule, ev, held, status, pair)
                    DEPLOY_HOLDS.inc(held.held)
                    out.append((pair, deploys.annotate(transitions), n))
                    continue
                batched.append((len(out), ev, machine, status, pair.times, pair.values))
                out.append((pair, [], 0))
                continue
            th = self.threshold(rule)
            transitions: list[Transition] = []
            n = 0
            last = status.last_ts
            for ts, value in zip(pair.times, pair.values, strict=True):
                if last is not None and ts <= last + EPS:
                    continue  # already evaluated (late or repeated point)
                transitions += machine.step(status, th.observe(ts, value))
                last = ts
                n += 1
            if deploys is not None:
                transitions = deploys.annotate(transitions)
            out.append((pair, transitions, n))
        # detectors: one batched update per detector bank
        stepped = step_many([b[1:] for b in batched])
        for (pos, *_), (transitions, n) in zip(batched, stepped, strict=True):
            out[pos] = (out[pos][0], transitions, n)
        return out

    def _step_held(
        self,
        key: tuple[int, int],
        rule: Rule,
        ev: DetectorEvaluator,
        machine: HeldMachine,
        status: Status,
        pair: _Pair,
    ) -> tuple[list[Transition], int]:
        """Evaluate a pair of a rule held after deploys: the points before each
        deploy reset by the detector in place, the points from it on by a fresh
        one (see :mod:`nazar_analyzer.deploys`)."""
        deploys = machine.deploys
        assert deploys is not None
        transitions: list[Transition] = []
        n = 0
        times, values = pair.times, pair.values
        for reset in deploys.resets_between(ev.origin, times[-1]):
            cut = bisect.bisect_left(times, reset - TOLERANCE)
            if cut:
                tr, k = step_many([(ev, machine, status, times[:cut], values[:cut])])[0]
                transitions, n = transitions + tr, n + k
                times, values = times[cut:], values[cut:]
            ev = self._detectors[key] = relearn(ev, rule, self.limits, self.banks, reset)
            RELEARNS.inc()
        if times:
            tr, k = step_many([(ev, machine, status, times, values)])[0]
            transitions, n = transitions + tr, n + k
        return transitions, n

    def _reset_before(self, rule: Rule, subject: Subject, until: float) -> float | None:
        """The latest deploy reset a detector at position ``until`` must have learnt from."""
        deploys = self.deploys_of(rule, subject)
        return None if deploys is None else deploys.last_reset(until)

    async def _sync_detectors(
        self,
        conn: asyncpg.Connection,
        pairs: Sequence[_Pair],
        states: dict[tuple[int, str], Status],
    ) -> None:
        """Make each needed detector's position equal its state row's ``last_ts``."""
        need: dict[tuple[int, int], _Need] = {}
        for p in pairs:
            if p.rule.kind == "threshold":
                continue
            assert p.subject.series_id is not None
            key = (p.rule.id, p.subject.series_id)
            db_last = states[(p.rule.id, p.subject.key)].last_ts
            want = _Need(p.rule, p.subject, db_last, p.times[0])
            want.reset = self._reset_before(p.rule, p.subject, want.until)
            ev = self._detectors.get(key)
            if ev is not None and ev.rule_version == p.rule.version:
                want.interval = ev.interval
                # learnt from before a deploy it should have re-learnt after: rebuild
                stale = want.reset is not None and (ev.origin is None or ev.origin < want.reset)
                if ev.last_ts == db_last and not stale:
                    self._detectors.move_to_end(key)
                    continue
                if (ev.last_ts is not None and db_last is not None and ev.last_ts < db_last
                        and not stale):
                    need[key] = want
                    continue
            self._detectors.pop(key, None)
            need[key] = want
        if not need:
            return
        # 1. detectors behind: replay the gap.
        gaps = [(k, self._detectors[k]) for k in need if k in self._detectors]
        if gaps:
            limit = self.settings.analyzer_max_history_points
            fetched = await store.fetch_ranges(
                conn, [(k[1], ev.last_ts, need[k].db_last or 0.0, limit) for k, ev in gaps]
            )
            async with self.cpu:
                await asyncio.to_thread(self._replay, gaps, fetched, need)
        # 2. missing detectors: snapshot + replay, or warm-up from history.
        missing = [k for k in need if k not in self._detectors]
        if not missing:
            return
        snaps = await store.load_snapshots(conn, missing)
        ranges: list[tuple[int, float | None, float, int]] = []
        plans: list[tuple[tuple[int, int], store.Snapshot | None, float | None]] = []
        for key in missing:
            want = need[key]
            rule, db_last, until, reset = want.rule, want.db_last, want.until, want.reset
            snap = snaps.get(key)
            usable = (
                snap is not None
                and snap.rule_version == rule.version
                and db_last is not None
                and snap.last_ts is not None
                and snap.last_ts <= db_last + EPS
                and detectors.loadable(snap.state)
                and (reset is None or (snap.origin is not None and snap.origin >= reset))
            )
            limit = self.settings.analyzer_max_history_points
            params = rule.spec.params
            window = params.window if params.kind == "baseline" else params.training_window  # type: ignore[union-attr]
            if usable:
                assert snap is not None
                ranges.append((key[1], snap.last_ts, until, limit))
                plans.append((key, snap, None))
            elif reset is not None and reset > until - window:
                # re-learn from the deploy: only its points (the one at the reset included)
                if want.interval is None and snap is not None:
                    want.interval = snap.interval
                ranges.append((key[1], reset - 1e-3, until, limit))
                plans.append((key, None, reset))
            else:
                ranges.append((key[1], until - window, until, limit))
                plans.append((key, None, until - window))
        fetched = await store.fetch_ranges(conn, ranges)
        async with self.cpu:
            await asyncio.to_thread(self._build, plans, fetched, need)
        REPLAYED.inc(sum(len(f) for f in fetched))

    def _replay(
        self,
        gaps: list[tuple[tuple[int, int], DetectorEvaluator]],
        fetched: list[list[tuple[float, float]]],
        need: dict[tuple[int, int], _Need],
    ) -> None:
        warm_many([(ev, points) for (_, ev), points in zip(gaps, fetched, strict=True)])
        for (key, ev), points in zip(gaps, fetched, strict=True):
            ev.last_ts = need[key].db_last
            REPLAYED.inc(len(points))

    def _build(
        self,
        plans: list[tuple[tuple[int, int], store.Snapshot | None, float | None]],
        fetched: list[list[tuple[float, float]]],
        need: dict[tuple[int, int], _Need],
    ) -> None:
        """Detectors from a snapshot plus the points after it, or from the
        points since ``origin`` (a warm-up, or re-learning after a deploy)."""
        built: list[tuple[tuple[int, int], DetectorEvaluator, list[tuple[float, float]]]] = []
        for (key, snap, origin), points in zip(plans, fetched, strict=True):
            want = need[key]
            rule = want.rule
            if snap is not None:
                ev = DetectorEvaluator(
                    rule.id, rule.version, key[1], rule.spec.metric or "value",
                    detectors.load(snap.state, self.banks), snap.interval, snap.last_ts,
                    snap.points, origin=snap.origin,
                )
            else:
                default = self.settings.analyzer_default_interval
                if want.reset is not None and origin == want.reset:
                    interval = want.interval or estimate_interval([t for t, _ in points], default)
                    ev = new_detector_evaluator(
                        rule, key[1], interval, self.limits, self.banks, origin
                    )
                    RELEARNS.inc()
                else:
                    interval = estimate_interval([t for t, _ in points], default)
                    ev = new_detector_evaluator(rule, key[1], interval, self.limits, self.banks)
                    ev.origin = origin
            built.append((key, ev, points))
        warm_many([(ev, points) for _, ev, points in built])  # batched per bank
        for key, ev, _ in built:
            ev.last_ts = need[key].db_last
            self._remember(key, ev)

    def _remember(self, key: tuple[int, int], ev: DetectorEvaluator) -> None:
        self._detectors[key] = ev
        self._detectors.move_to_end(key)
        while len(self._detectors) > self.settings.analyzer_detector_cache:
            _, old = self._detectors.popitem(last=False)
            if old.dirty:
                self._evicted.append(old)

    # -- detector snapshots --------------------------------------------------

    async def flush_models(self, chunk: int = 64) -> int:
        """Persist the detectors changed since their last snapshot."""
        assert self.pool is not None
        dirty = [ev for ev in self._detectors.values() if ev.dirty] + self._evicted
        self._evicted = []
        done = 0
        for i in range(0, len(dirty), chunk):
            part = dirty[i : i + chunk]
            async with self.cpu:
                rows = await asyncio.to_thread(self._dump, part)
            await store.save_snapshots(self.pool, rows)
            done += len(rows)
        return done

    @staticmethod
    def _dump(
        evs: list[DetectorEvaluator],
    ) -> list[tuple[int, int, int, str, float, float | None, int, bytes, float | None]]:
        rows = []
        for ev in evs:
            rows.append((ev.rule_id, ev.series_id, ev.rule_version, ev.detector.name,
                         ev.interval, ev.last_ts, ev.points, detectors.dump(ev.detector),
                         ev.origin))
            ev.dirty = False
        return rows

    # -- periodic sweeps ------------------------------------------------------

    async def sweep(self, now: float | None = None) -> list[AlertEventV1]:
        """Absence and forecast rules, no-data detection and alerts of deleted rules."""
        assert self.pool is not None
        now = time.time() if now is None else now
        events: list[AlertEventV1] = []
        for rule in self.rules.absence_rules:
            events += await self._absence(rule, now)
        forecast_rules = [r for r in self.rules.rules.values() if r.kind == "forecast"]
        events += await self.forecasts.run(self.pool, forecast_rules, self.hosts, self.deploys,
                                           now)
        for rule in self.rules.burn_rate_rules:
            events += await self._burn_rate(rule, now)
        events += await self._nodata(now)
        events += await self._orphans(now)
        for event in events:
            TRANSITIONS.labels(event.state).inc()
        return events

    async def _absence(self, rule: Rule, now: float) -> list[AlertEventV1]:
        assert self.pool is not None
        lookback = self.settings.analyzer_absence_lookback
        existing = await self.pool.fetch(
            "SELECT subject, host, series_id FROM analyzer_state WHERE rule_id = $1", rule.id
        )
        seen: dict[str, tuple[Subject, float | None]] = {}
        if rule.spec.metric is None:
            hosts = await store.host_last_seen(self.pool, lookback, [r["host"] for r in existing])
            for host, labels, ts in hosts:
                if rule.matches_host(host, labels):
                    subject = Subject(host_subject(host), host, None, None, (),
                                      tuple(sorted(labels.items())))
                    seen[subject.key] = (subject, ts)
        else:
            series = await store.matching_series(
                self.pool, rule.spec.metric, rule.spec.match_series_labels,
                rule.spec.selector.hosts or None, 100_000,
            )
            series = [s for s in series
                      if rule.matches_host(s.host, self.hosts.get(s.host, {}))]
            last = await store.series_last_seen(self.pool, [s.id for s in series], lookback)
            known = {r["series_id"] for r in existing}
            for s in series:
                if s.id in last or s.id in known:
                    subject = Subject(
                        series_subject(s.id), s.host, s.id, s.metric,
                        tuple(sorted(s.labels.items())),
                        tuple(sorted(self.hosts.get(s.host, {}).items())),
                    )
                    seen[subject.key] = (subject, last.get(s.id))
        if not seen:
            return []
        async with self.pool.acquire() as conn:
            await store.ensure_states(conn, [(rule.id, s) for s, _ in seen.values()])
            async with conn.transaction():
                return await self._absence_tx(conn, rule, now, seen)

    async def _absence_tx(
        self, conn: asyncpg.Connection, rule: Rule, now: float,
        seen: dict[str, tuple[Subject, float | None]],
    ) -> list[AlertEventV1]:
        events: list[AlertEventV1] = []
        machine = self.machine(rule)
        states = await store.lock_states(conn, [(rule.id, k) for k in seen], skip_locked=True)
        for (_, key), status in states.items():
            subject, ts = seen[key]
            last_seen = max(x for x in (ts, status.last_ts) if x is not None) if (
                ts is not None or status.last_ts is not None) else None
            what = f"host {subject.host}" if subject.series_id is None else (
                f"{subject.metric} on {subject.host}")
            start = status.alert_id
            transitions = machine.step(status, absence_observation(rule, now, last_seen, what))
            status.last_ts = last_seen
            deploys = self.deploys_of(rule, subject)
            if transitions and deploys is not None:
                transitions = deploys.annotate(transitions)
            if transitions:
                events += await store.record_transitions(
                    conn, rule, subject, status, transitions, start
                )
        await store.save_states(conn, states)
        return events

    async def _burn_rate(self, rule: Rule, now: float) -> list[AlertEventV1]:
        """A burn_rate rule on its SLO (see :mod:`nazar_analyzer.burnrate`), at
        most every ``analyzer_burn_rate_interval`` seconds."""
        assert self.pool is not None
        params = rule.spec.params
        assert isinstance(params, BurnRateParams)
        if now - self._burn_rate_at.get(rule.id, -math.inf) < (
            self.settings.analyzer_burn_rate_interval
        ):
            return []
        self._burn_rate_at[rule.id] = now
        slo = self.slos.get(params.slo)
        if slo is None:  # never created, or deleted: an open alert resolves
            log.warning("burn_rate rule names an unknown SLO",
                        extra={"rule": rule.name, "slo": params.slo})
            observation = burnrate.unknown(params, now)
        else:
            windows = burnrate.windows(params)
            raw_from = now - self.settings.retention_raw.total_seconds()
            started = time.perf_counter()
            measures = await store.measure_slo(self.pool, slo, windows, now, raw_from)
            BURN_RATE_SECONDS.observe(time.perf_counter() - started)
            observation = burnrate.observe(params, slo, measures, now)
        subject = burnrate.subject(params.slo)
        async with self.pool.acquire() as conn:
            await store.ensure_states(conn, [(rule.id, subject)])
            async with conn.transaction():
                states = await store.lock_states(conn, [(rule.id, subject.key)],
                                                 skip_locked=True)
                events: list[AlertEventV1] = []
                for status in states.values():
                    start = status.alert_id
                    transitions = self.machine(rule).step(status, observation)
                    if transitions:
                        events += await store.record_transitions(
                            conn, rule, subject, status, transitions, start
                        )
                await store.save_states(conn, states)
        return events

    async def _nodata(self, now: float) -> list[AlertEventV1]:
        assert self.pool is not None
        rule_ids = [r.id for r in self.rules.rules.values() if r.sample_driven]
        if not rule_ids:
            return []
        events: list[AlertEventV1] = []
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await store.stale_states(
                conn, rule_ids, now - self.settings.analyzer_nodata_after
            )
            if not rows:
                return []
            info = await self._subjects(conn, [(r, s) for r, s, _ in rows])
            states: dict[tuple[int, str], Status] = {}
            for rule_id, key, status in rows:
                rule = self.rules.rules[rule_id]
                start = status.alert_id
                transitions = self.machine(rule).no_data(status, now)
                deploys = self.deploys_of(rule, info[(rule_id, key)])
                if transitions and deploys is not None:
                    transitions = deploys.annotate(transitions)
                if transitions:
                    events += await store.record_transitions(
                        conn, rule, info[(rule_id, key)], status, transitions, start
                    )
                states[(rule_id, key)] = status
            await store.save_states(conn, states)
        return events

    async def _orphans(self, now: float) -> list[AlertEventV1]:
        assert self.pool is not None
        events: list[AlertEventV1] = []
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await store.orphan_states(conn)
            if not rows:
                return []
            for rule_id, key, status, row in rows:
                if status.alert_id is None:
                    continue
                alert = await conn.fetchrow(
                    "SELECT rule_name, kind, severity, metric, labels::text AS labels "
                    "FROM alerts WHERE id = $1", status.alert_id
                )
                if alert is None:
                    continue
                rule = _ghost_rule(rule_id, alert)
                subject = Subject(key, row["host"], row["series_id"], alert["metric"])
                start = status.alert_id
                transitions = Machine().close(status, now, "the rule was deleted or disabled")
                events += await store.record_transitions(
                    conn, rule, subject, status, transitions, start
                )
            await store.delete_states(conn, [(r, k) for r, k, _, _ in rows])
        return events

    async def _subjects(
        self, conn: asyncpg.Connection, keys: list[tuple[int, str]]
    ) -> dict[tuple[int, str], Subject]:
        rows = await conn.fetch(
            "SELECT a.rule_id, a.subject, a.host, a.series_id, s.metric, s.labels::text AS labels "
            "FROM analyzer_state a LEFT JOIN series s ON s.id = a.series_id "
            "WHERE (a.rule_id, a.subject) IN (SELECT * FROM unnest($1::bigint[], $2::text[]))",
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
        out = {}
        for r in rows:
            labels = orjson.loads(r["labels"]) if r["labels"] else {}
            out[(r["rule_id"], r["subject"])] = Subject(
                r["subject"], r["host"], r["series_id"], r["metric"],
                tuple(sorted(labels.items())),
                tuple(sorted(self.hosts.get(r["host"], {}).items())),
            )
        return out


_GHOST_PARAMS: dict[str, dict[str, object]] = {
    "threshold": {"kind": "threshold", "value": 0},
    "forecast": {"kind": "forecast", "value": 0},
    burnrate.KIND: {"kind": burnrate.KIND, "slo": "deleted"},
}


def _ghost_rule(rule_id: int, alert: asyncpg.Record) -> Rule:
    """A stand-in for a deleted rule, enough to close its alerts."""
    spec = RuleSpec.model_validate(
        {
            "name": alert["rule_name"],
            "metric": alert["metric"],
            "params": _GHOST_PARAMS.get(alert["kind"], {"kind": alert["kind"]}),
            "severity": alert["severity"],
        }
    )
    return Rule(rule_id, alert["rule_name"], 0, spec)
