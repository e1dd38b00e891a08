"""Evaluation of sample batches and periodic sweeps over in-memory state (no I/O).

The engine holds, for the partitions its replica owns (see
:mod:`nazar_analyzer.service`), the alert state machine of every (rule,
subject) and the detectors of every (rule, series), and evaluates batches
against them. It runs no SQL: the service restores and checkpoints the
state through :mod:`nazar_analyzer.store`, and stored history reaches the
detectors through a :class:`History` (a series seen for the first time, or
a detector whose snapshot is behind its state after a restore, is brought
up to date from it once — never per sample).

Rule kinds are evaluated by the evaluators registered in
:mod:`nazar_analyzer.evaluators` (``threshold`` per sample, ``baseline`` /
``anomaly`` with a detector per series); ``absence`` is judged by the sweep.
"""

from __future__ import annotations

import bisect
import itertools
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import Counter, Gauge

from nazar_analyzer import detectors
from nazar_analyzer.deploys import TOLERANCE, DeployIndex, Deploys, HeldMachine
from nazar_analyzer.evaluators import (
    DETECTOR_KINDS,
    MIN_INTERVAL_POINTS,
    OBSERVER_KINDS,
    DetectorEvaluator,
    Observer,
    absence_observation,
    estimate_interval,
    measured_interval,
    new_detector_evaluator,
    relearn,
    step_many,
    warm_many,
)
from nazar_analyzer.machine import NORMAL, Machine, Status, Transition
from nazar_analyzer.rules import Rule, RuleSet, series_subject
from nazar_analyzer.settings import AnalyzerSettings
from nazar_analyzer.state import EPS, PartitionState, Snapshot, StateKey, Subject
from nazar_common.schemas.config import RuleSpec
from nazar_common.schemas.events import Event
from nazar_common.schemas.slo import SLOSpec
from nazar_common.schemas.wire import SampleBatchV1

log = logging.getLogger(__name__)

SAMPLES_EVALUATED = Counter(
    "nazar_analyzer_samples_evaluated_total", "Samples evaluated against rules (per rule)"
)
TRANSITIONS = Counter("nazar_analyzer_transitions_total", "Alert state transitions", ["state"])
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


class History(Protocol):
    """Stored points and detector snapshots (implemented by the store)."""

    async def fetch_ranges(
        self, ranges: Sequence[tuple[int, float | None, float, int]]
    ) -> list[list[tuple[float, float]]]: ...

    async def load_snapshots(
        self, keys: Sequence[tuple[int, int]]
    ) -> Mapping[tuple[int, int], Snapshot]: ...


@dataclass
class Change:
    """Transitions of one (rule, subject) to record (alert rows, outbox)."""

    rule: Rule
    subject: Subject
    status: Status
    transitions: list[Transition]
    #: The open alert's id before these transitions.
    start: int | None


@dataclass
class Outcome:
    pairs: int = 0
    evaluated: int = 0
    changes: list[Change] = field(default_factory=list)


@dataclass(slots=True)
class _Pair:
    rule: Rule
    subject: Subject
    times: list[float]
    values: list[float]
    #: (rule id, subject key), when the caller knows it
    key: StateKey | None = None


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
    def __init__(self, settings: AnalyzerSettings, history: History | None = None) -> None:
        self.settings = settings
        self.history = history
        self.limits = detectors.Limits(max_points=settings.analyzer_max_history_points)
        self.rules = RuleSet()
        self.hosts: dict[str, dict[str, str]] = {}
        #: Recent events (deploys...), for rules with ``deploys``.
        self.deploys = DeployIndex()
        #: SLOs by name, for burn_rate rules (evaluated by the service's sweep).
        self.slos: dict[str, SLOSpec] = {}
        self._observers: dict[tuple[int, int, int | None], Observer] = {}
        self._machines: dict[tuple[int, int], Machine] = {}
        #: series id -> (rule set generation, host labels, subject, its rules
        #: with their state keys)
        self._series_cache: dict[
            int, tuple[int, Mapping[str, str], Subject, list[tuple[Rule, StateKey]]]
        ] = {}
        self._detectors: OrderedDict[tuple[int, int], DetectorEvaluator] = OrderedDict()
        self._evicted: list[DetectorEvaluator] = []
        #: composite detectors of one configuration share a bank (batched updates)
        self.banks = detectors.BankPool()

    # -- configuration -----------------------------------------------------

    def configure(self, rules: list[Rule], hosts: dict[str, dict[str, str]]) -> None:
        """A new rule set (and host labels); detectors of changed rules are dropped."""
        old = self.rules
        self.rules = RuleSet.build(rules, old.generation + 1)
        self.hosts = hosts
        live = {(r.id, r.version) for r in self.rules.rules.values()}
        self._observers = {k: v for k, v in self._observers.items() if k[:2] in live}
        self._machines = {k: v for k, v in self._machines.items() if k in live}
        for key in [k for k, d in self._detectors.items() if (k[0], d.rule_version) not in live]:
            del self._detectors[key]
        DETECTORS.set(len(self._detectors))

    def set_events(self, events: list[Event]) -> None:
        """Recent events (on NOTIFY nazar_events and with every reload)."""
        self.deploys = DeployIndex(events)
        EVENTS.set(len(self.deploys))

    # -- partitions ----------------------------------------------------------

    def restore(
        self, part: PartitionState, rows: list[tuple[int, Subject, Status]]
    ) -> None:
        """Fill ``part`` from its checkpoint (detectors follow lazily: each is
        brought to its state's position the first time a batch needs it)."""
        for rule_id, subject, status in rows:
            labels = tuple(sorted(self.hosts.get(subject.host, {}).items()))
            subject = Subject(subject.key, subject.host, subject.series_id, subject.metric,
                              subject.labels, labels)
            part.states[(rule_id, subject.key)] = status
            part.subjects[subject.key] = subject

    def release(self, part: PartitionState) -> None:
        """Forget a partition's detectors (another replica owns it now)."""
        for key in part.detectors:
            self._detectors.pop(key, None)
        part.detectors.clear()
        DETECTORS.set(len(self._detectors))

    def dump_models(self, part: PartitionState) -> list[Any]:
        """Snapshots of the partition's detectors changed since their last one
        (and of detectors evicted from memory), marking them clean."""
        evs = [ev for k in part.detectors if (ev := self._detectors.get(k)) is not None
               and ev.dirty and not ev.guessed]
        evs += self._evicted
        self._evicted = []
        part.models_dirty = False
        return self._dump(evs)

    def deploys_of(self, rule: Rule, subject: Subject) -> Deploys | None:
        """The deploys that concern ``rule`` on ``subject``'s host, if the rule cares."""
        if rule.spec.deploys is None:
            return None
        return Deploys.of(rule.spec, self.deploys, subject.host, dict(subject.host_labels))

    def machine(self, rule: Rule) -> Machine:
        """The state machine of ``rule`` (stateless: shared by its subjects)."""
        key = (rule.id, rule.version)
        machine = self._machines.get(key)
        if machine is None:
            machine = self._machines[key] = Machine(rule.spec.for_, rule.spec.keep_firing_for)
        return machine

    def observer(self, rule: Rule, series_id: int | None) -> Observer:
        """The observer of a rule kind registered in :data:`OBSERVER_KINDS`
        (per rule, or per (rule, series))."""
        kind = OBSERVER_KINDS[rule.kind]
        key = (rule.id, rule.version, series_id if kind.per_series else None)
        ev = self._observers.get(key)
        if ev is None:
            ev = self._observers[key] = kind.factory(rule)
        return ev

    # -- the sample path ---------------------------------------------------

    def pairs_of(self, *batches: SampleBatchV1) -> list[_Pair]:
        """(rule, series) pairs of batches (in delivery order) with their
        points in time order."""
        if len(batches) == 1:
            fast = self._pairs_of_distinct(batches[0])
            if fast is not None:
                return fast
        #: series id -> [ref, batch host labels, times, values]
        per_series: dict[int, list[Any]] = {}
        for batch in batches:
            series, hosts = batch.series, batch.hosts
            for i, t, v in zip(batch.series_index, batch.times, batch.values, strict=True):
                ref = series[i]
                sid = ref.id
                if sid is None:
                    continue
                entry = per_series.get(sid)
                if entry is None:
                    per_series[sid] = [ref, hosts.get(ref.host) or {}, [t], [v]]
                else:  # a later point: sorted below if need be
                    entry[2].append(t)
                    entry[3].append(v)
        pairs: list[_Pair] = []
        generation = self.rules.generation
        has_metric = self.rules.has_metric
        cache = self._series_cache
        for sid, (ref, batch_labels, times, values) in per_series.items():
            if not has_metric(ref.metric):
                continue
            host_labels = batch_labels or self.hosts.get(ref.host, {})
            hit = cache.get(sid)
            if hit is None or hit[0] != generation or hit[1] != host_labels:
                hit = self._cache_series(sid, ref, host_labels)
            _, _, subject, keyed = hit
            if not keyed:
                continue
            if len(times) > 1 and any(b < a for a, b in itertools.pairwise(times)):
                order = sorted(range(len(times)), key=times.__getitem__)
                times = [times[j] for j in order]
                values = [values[j] for j in order]
            for rule, key in keyed:
                pairs.append(_Pair(rule, subject, times, values, key))
        return pairs

    def _pairs_of_distinct(self, batch: SampleBatchV1) -> list[_Pair] | None:
        """:meth:`pairs_of` for the common batch (one point per series, as an
        agent's push): the same pairs in the same order without grouping the
        points by series first; None when some series has several points."""
        series, index = batch.series, batch.series_index
        ids = [ref.id for ref in series]
        sids = [ids[i] for i in index]
        if None in sids or len(set(sids)) != len(sids):
            return None
        pairs: list[_Pair] = []
        append = pairs.append
        generation = self.rules.generation
        has_metric = self.rules.has_metric
        cache = self._series_cache
        hosts, known_hosts = batch.hosts, self.hosts
        for i, sid, t, v in zip(index, sids, batch.times, batch.values, strict=True):
            ref = series[i]
            if not has_metric(ref.metric):
                continue
            host_labels = hosts.get(ref.host) or known_hosts.get(ref.host, {})
            hit = cache.get(sid)
            if hit is None or hit[0] != generation or hit[1] != host_labels:
                hit = self._cache_series(sid, ref, host_labels)
            keyed = hit[3]
            if not keyed:
                continue
            subject, times, values = hit[2], [t], [v]
            for rule, key in keyed:
                append(_Pair(rule, subject, times, values, key))
        return pairs

    def _cache_series(
        self, sid: int, ref: Any, host_labels: Mapping[str, str]
    ) -> tuple[int, Mapping[str, str], Subject, list[tuple[Rule, StateKey]]]:
        """The subject of series ``sid`` and its rules with their state keys (cached)."""
        rules = self.rules.for_series(sid, ref.metric, ref.host, ref.labels, host_labels)
        subject = Subject(
            series_subject(sid), ref.host, sid, ref.metric,
            tuple(sorted(ref.labels.items())), tuple(sorted(host_labels.items())),
        )
        cache = self._series_cache
        if len(cache) > 1_000_000:
            cache.clear()
        hit = cache[sid] = (self.rules.generation, host_labels, subject,
                            [(rule, (rule.id, subject.key)) for rule in rules])
        return hit

    async def prepare(self, part: PartitionState, pairs: Sequence[_Pair]) -> None:
        """Bring the detectors ``pairs`` need to their states' positions (I/O
        only for detectors not in memory or behind)."""
        learning = [p for p in pairs if p.rule.kind in DETECTOR_KINDS]
        if not learning:
            return
        states = {(p.rule.id, p.subject.key): part.status(p.rule.id, p.subject)
                  for p in learning}
        await self._sync_detectors(learning, states)
        for p in learning:
            if p.subject.series_id is not None:
                part.detectors.add((p.rule.id, p.subject.series_id))

    def evaluate(self, part: PartitionState, pairs: Sequence[_Pair]) -> Outcome:
        """Evaluate ``pairs`` (prepared) against the partition's state, in place."""
        outcome = Outcome(pairs=len(pairs))
        if not pairs:
            return outcome
        states: dict[StateKey, Status] = {}
        known = part.states
        #: per rule: the quiet test of its shared observer when a lone point
        #: of a normal subject can be judged here (no deploys), else None
        quick: dict[int, Any] = {}
        rest: list[_Pair] = []
        quiet_points = 0
        for p in pairs:
            rule = p.rule
            key = p.key or (rule.id, p.subject.key)
            st = known.get(key)
            if st is None:
                st = part.status(rule.id, p.subject)
            elif st.state == NORMAL and len(p.times) == 1:
                # the common case: one point, no breach (as in _evaluate)
                rid = rule.id
                quiet = quick[rid] if rid in quick else self._quiet_of(quick, rule)
                if quiet is not None:
                    ts = p.times[0]
                    last = st.last_ts
                    if (last is None or ts > last + EPS) and quiet(p.values[0]):
                        st.last_ts = ts
                        quiet_points += 1
                        continue
            states[key] = st
            rest.append(p)
        outcome.evaluated = quiet_points
        starts = {k: s.alert_id for k, s in states.items() if s.alert_id is not None}
        results = self._evaluate(rest, states) if rest else []
        dirty = part.dirty
        for pair, transitions, n in results:
            outcome.evaluated += n
            key = (pair.rule.id, pair.subject.key)
            # A normal state's position alone is not checkpointed: replaying a
            # point it has seen records nothing twice (event ids are derived
            # from the transitions). Detector states are: their position is
            # the detectors' (see _sync_detectors).
            learns = pair.rule.kind in DETECTOR_KINDS
            if transitions or learns or states[key].state != NORMAL:
                dirty.add(key)
                if learns:
                    part.models_dirty = True
            if transitions:
                outcome.changes.append(
                    Change(pair.rule, pair.subject, states[key], transitions, starts.get(key))
                )
        part.samples_since_checkpoint += outcome.evaluated
        SAMPLES_EVALUATED.inc(outcome.evaluated)
        for change in outcome.changes:
            for tr in change.transitions:
                TRANSITIONS.labels(tr.state).inc()
        DETECTORS.set(len(self._detectors))
        return outcome

    def _quiet_of(self, quick: dict[int, Any], rule: Rule) -> Any:
        """The quiet test of ``rule``'s shared observer, if a rule without
        deploys has one (see :meth:`evaluate`)."""
        kind = OBSERVER_KINDS.get(rule.kind)
        quiet = None
        if kind is not None and not kind.per_series and rule.spec.deploys is None:
            quiet = getattr(self.observer(rule, None), "quiet", None)
        quick[rule.id] = quiet
        return quiet

    def _evaluate(
        self, pairs: Sequence[_Pair], states: dict[tuple[int, str], Status]
    ) -> list[tuple[_Pair, list[Transition], int]]:
        out: list[tuple[_Pair, list[Transition], int]] = []
        batched: list[tuple[int, DetectorEvaluator, Machine, Status, list[float], list[float]]] = []
        #: per rule: its machine, whether it cares about deploys, and for a
        #: kind with one observer per rule, the observer and its quiet test
        plans: dict[int, tuple[Machine, bool, Observer | None, Any]] = {}
        for pair in pairs:
            rule = pair.rule
            status = states[(rule.id, pair.subject.key)]
            plan = plans.get(rule.id)
            if plan is None:
                kind = OBSERVER_KINDS.get(rule.kind)
                shared = self.observer(rule, None) if kind and not kind.per_series else None
                plan = plans[rule.id] = (self.machine(rule), rule.spec.deploys is not None,
                                         shared, getattr(shared, "quiet", None))
            machine, cares, shared, quiet = plan
            if shared is not None and quiet is not None and not cares and (
                    status.state == NORMAL and len(pair.times) == 1):
                ts = pair.times[0]  # the common case: one point, no breach
                if (status.last_ts is None or ts > status.last_ts + EPS) and quiet(
                        pair.values[0]):
                    status.last_ts = ts
                    out.append((pair, [], 1))
                    continue
            deploys = self.deploys_of(rule, pair.subject) if cares else None
            if rule.kind in DETECTOR_KINDS:
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
            th = shared or self.observer(rule, pair.subject.series_id)
            quiet = getattr(th, "quiet", None)
            transitions: list[Transition] = []
            n = 0
            last = status.last_ts
            for ts, value in zip(pair.times, pair.values, strict=True):
                if last is not None and ts <= last + EPS:
                    continue  # already evaluated (late or repeated point)
                if quiet is not None and status.state == NORMAL and quiet(value):
                    status.last_ts = ts  # nothing to explain: the machine stays normal
                else:
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
        pairs: Sequence[_Pair],
        states: dict[tuple[int, str], Status],
    ) -> None:
        """Make each needed detector's position equal its state row's ``last_ts``."""
        need: dict[tuple[int, int], _Need] = {}
        for p in pairs:
            if p.rule.kind not in DETECTOR_KINDS:
                continue
            assert p.subject.series_id is not None
            key = (p.rule.id, p.subject.series_id)
            db_last = states[(p.rule.id, p.subject.key)].last_ts
            want = _Need(p.rule, p.subject, db_last, p.times[0])
            want.reset = self._reset_before(p.rule, p.subject, want.until)
            ev = self._detectors.get(key)
            if ev is not None and ev.rule_version == p.rule.version:
                want.interval = ev.interval
                # learnt from before a deploy it should have re-learnt after, or
                # built on a guessed interval that can now be measured: rebuild
                stale = (
                    want.reset is not None and (ev.origin is None or ev.origin < want.reset)
                ) or (ev.guessed and ev.points >= MIN_INTERVAL_POINTS)
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
            assert self.history is not None
            fetched = await self.history.fetch_ranges(
                [(k[1], ev.last_ts, need[k].db_last or 0.0, limit) for k, ev in gaps]
            )
            self._replay(gaps, fetched, need)
        # 2. missing detectors: snapshot + replay, or warm-up from history.
        missing = [k for k in need if k not in self._detectors]
        if not missing:
            return
        assert self.history is not None
        snaps = await self.history.load_snapshots(missing)
        ranges: list[tuple[int, float | None, float, int]] = []
        plans: list[tuple[tuple[int, int], Snapshot | None, float | None]] = []
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
        fetched = await self.history.fetch_ranges(ranges)
        self._build(plans, fetched, need)
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
        plans: list[tuple[tuple[int, int], Snapshot | None, float | None]],
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
                    detectors.load(snap.state, self.banks, snap.interval), snap.interval,
                    snap.last_ts,
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
                    measured = measured_interval([t for t, _ in points])
                    interval = default if measured is None else measured
                    ev = new_detector_evaluator(rule, key[1], interval, self.limits, self.banks)
                    ev.origin = origin
                    ev.guessed = measured is None
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
            if old.dirty and not old.guessed:
                self._evicted.append(old)

    # -- detector snapshots --------------------------------------------------

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

    # -- periodic sweeps (per partition, in order with its samples) ----------

    def absence(
        self, part: PartitionState, rule: Rule, now: float,
        seen: Mapping[str, tuple[Subject, float | None]],
    ) -> list[Change]:
        """Judge ``rule`` (absence) on the partition's subjects ``seen``
        (subject key -> subject, time last seen), and on those it already holds."""
        changes: list[Change] = []
        machine = self.machine(rule)
        subjects = dict(seen)
        for (rule_id, key), _ in list(part.states.items()):
            if rule_id == rule.id and key not in subjects and key in part.subjects:
                subjects[key] = (part.subjects[key], None)
        for key, (subject, ts) in sorted(subjects.items()):
            status = part.status(rule.id, subject)
            last_seen = max(x for x in (ts, status.last_ts) if x is not None) if (
                ts is not None or status.last_ts is not None) else None
            what = f"host {subject.host}" if subject.series_id is None else (
                f"{subject.metric} on {subject.host}")
            start = status.alert_id
            before = (status.state, status.last_ts)
            transitions = machine.step(status, absence_observation(rule, now, last_seen, what))
            status.last_ts = last_seen
            deploys = self.deploys_of(rule, subject)
            if transitions and deploys is not None:
                transitions = deploys.annotate(transitions)
            if transitions or before != (status.state, status.last_ts):
                part.touch([(rule.id, key)])
            if transitions:
                changes.append(Change(rule, subject, status, transitions, start))
        return self._counted(changes)

    def nodata(self, part: PartitionState, now: float) -> list[Change]:
        """States of sample-driven rules whose subject has been silent too long."""
        before = now - self.settings.analyzer_nodata_after
        changes: list[Change] = []
        for (rule_id, key), status in part.states.items():
            rule = self.rules.rules.get(rule_id)
            if (rule is None or not rule.sample_driven or status.state == "nodata"
                    or status.last_ts is None or status.last_ts >= before):
                continue
            subject = part.subjects[key]
            start = status.alert_id
            transitions = self.machine(rule).no_data(status, now)
            part.touch([(rule_id, key)])
            deploys = self.deploys_of(rule, subject)
            if transitions and deploys is not None:
                transitions = deploys.annotate(transitions)
            if transitions:
                changes.append(Change(rule, subject, status, transitions, start))
        return self._counted(changes)

    def orphans(self, part: PartitionState) -> list[StateKey]:
        """States whose rule was deleted or disabled."""
        return [k for k in part.states if k[0] not in self.rules.rules]

    def close_orphans(
        self, part: PartitionState, keys: list[StateKey], alerts: Mapping[int, Any], now: float
    ) -> list[Change]:
        """Close the open alerts of ``keys`` (``alerts``: their rows by id) and
        forget their states."""
        changes: list[Change] = []
        for rule_id, key in keys:
            status = part.states[(rule_id, key)]
            alert = alerts.get(status.alert_id) if status.alert_id is not None else None
            if alert is not None and key in part.subjects:
                s = part.subjects[key]
                subject = Subject(key, s.host, s.series_id, alert["metric"])
                start = status.alert_id
                transitions = Machine().close(status, now, "the rule was deleted or disabled")
                changes.append(Change(_ghost_rule(rule_id, alert), subject, status,
                                      transitions, start))
        part.remove(keys)
        return self._counted(changes)

    def close_deleted(
        self, rule_id: int, subject: Subject, status: Status, alert: Mapping[str, Any],
        now: float,
    ) -> Change | None:
        """Close the open alert of a state whose rule is gone (outside the
        partitions: forecast and burn_rate rules); None when nothing is open."""
        start = status.alert_id
        transitions = Machine().close(status, now, "the rule was deleted or disabled")
        if not transitions:
            return None
        return self._counted([Change(_ghost_rule(rule_id, alert), subject, status,
                                     transitions, start)])[0]

    @staticmethod
    def _counted(changes: list[Change]) -> list[Change]:
        for change in changes:
            for tr in change.transitions:
                TRANSITIONS.labels(tr.state).inc()
        return changes


_GHOST_PARAMS: dict[str, dict[str, object]] = {
    "threshold": {"kind": "threshold", "value": 0},
    "forecast": {"kind": "forecast", "value": 0},
    "burn_rate": {"kind": "burn_rate", "slo": "deleted"},
}


def _ghost_rule(rule_id: int, alert: Mapping[str, Any]) -> Rule:
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
