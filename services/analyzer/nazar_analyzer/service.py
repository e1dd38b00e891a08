"""The analyzer process: consumes its partitions of the sample stream, keeps
their state in memory and checkpoints it, keeps the rule set fresh, runs the
sweeps and relays alert events — on the shared worker runtime
(:mod:`nazar_common.runtime`).

Partitions (see docs/alerts.md):

* the stream is split into ``NAZAR_ANALYZER_PARTITIONS`` quorum queues by a
  hash of the host; every replica subscribes to every queue as a *single
  active consumer*: the broker delivers a queue to one subscriber at a time
  and hands it to the next when that one leaves (its connection closes, or
  it cancels). Receiving a partition's first message is taking it over: the
  replica claims the partition in the database (a new epoch, fencing the
  previous owner's checkpoints) and restores its checkpoint;
* a batch is evaluated in memory and acknowledged only when a checkpoint
  covers it (every ``checkpoint_interval`` seconds or ``checkpoint_samples``
  samples): after a crash the broker redelivers exactly the batches after
  the checkpoint to the next owner, which restores and replays them. Alerts
  are recorded at once, under ids derived from the transitions themselves,
  so a replay records nothing twice;
* replicas heartbeat in the database; one owning more than
  ``ceil(partitions / replicas)`` checkpoints the excess, cancels its
  subscription to it (the broker passes it to the next subscriber) and
  subscribes again at the back of the line.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import os
import socket
import time
import uuid
from dataclasses import dataclass, field

import asyncpg
import orjson
from aio_pika.abc import AbstractIncomingMessage
from prometheus_client import Counter, Gauge, Histogram

from nazar_analyzer import burnrate, store
from nazar_analyzer.deploys import MAX_EVENTS
from nazar_analyzer.engine import Change, Engine
from nazar_analyzer.forecasting import ForecastSweep
from nazar_analyzer.rules import Rule, host_subject, series_subject
from nazar_analyzer.settings import AnalyzerSettings
from nazar_analyzer.state import PartitionState, Subject
from nazar_common.db.events import EVENTS_CHANNEL
from nazar_common.errors import InvalidInputError, TransientError
from nazar_common.messaging.broker import ConsumerEvent
from nazar_common.messaging.outbox import OutboxRelay
from nazar_common.messaging.topology import (
    ALERTS_EXCHANGE,
    SAMPLES_EXCHANGE,
    analyzer_partition,
    partition_of,
    partition_routing_key,
)
from nazar_common.runtime.backoff import Incident
from nazar_common.runtime.worker import Runtime
from nazar_common.schemas.config import BurnRateParams
from nazar_common.schemas.wire import AlertEventV1, SampleBatchV1

log = logging.getLogger(__name__)

SERVICE = "nazar-analyzer"

BATCHES = Counter("nazar_analyzer_batches_total", "Sample batches handled", ["outcome"])
OUTBOX_PUBLISHED = Counter(
    "nazar_analyzer_outbox_published_total", "Alert events published from the outbox"
)
RULES = Gauge("nazar_analyzer_rules", "Enabled rules loaded")
BURN_RATE_SECONDS = Histogram(
    "nazar_analyzer_burn_rate_seconds",
    "Time to measure an SLO's windows and evaluate one burn_rate rule",
)
OWNED = Gauge("nazar_analyzer_partitions_owned", "Partitions this replica owns")
MEMBERS = Gauge("nazar_analyzer_members", "Live analyzer replicas (heartbeats)")
CHECKPOINTS = Counter("nazar_analyzer_checkpoints_total", "Partition checkpoints", ["outcome"])
CHECKPOINT_SECONDS = Histogram(
    "nazar_analyzer_checkpoint_seconds", "Time to write one partition checkpoint"
)
TAKEOVERS = Counter(
    "nazar_analyzer_partition_takeovers_total", "Partitions taken over (checkpoint restored)"
)
HANDOVERS = Counter(
    "nazar_analyzer_partition_handovers_total", "Partitions handed over to another replica"
)
LAG = Histogram(
    "nazar_analyzer_lag_seconds", "Newest sample time of a batch to its evaluation",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)

#: Body of the tick messages that drive a partition's sweeps (absence, no data).
TICK_SCHEMA = "nazar.tick.v1"


def tick_body(now: float) -> bytes:
    return orjson.dumps({"schema": TICK_SCHEMA, "at": now})


def is_tick(body: bytes) -> bool:
    return body[:40].find(TICK_SCHEMA.encode()) >= 0


@dataclass
class Owned:
    """A partition this replica owns, and its batches awaiting a checkpoint."""

    state: PartitionState
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: list[asyncio.Future[None]] = field(default_factory=list)
    #: Batches delivered, waiting to be evaluated (by ``worker``).
    inbox: list[tuple[SampleBatchV1, asyncio.Future[None]]] = field(default_factory=list)
    worker: asyncio.Task[None] | None = None
    #: Taken over and nothing evaluated yet: the first deliveries are the
    #: previous owner's unacknowledged batches, redelivered in an order the
    #: broker does not promise; they are gathered and evaluated together
    #: (each series' points in time order).
    fresh: bool = True
    releasing: bool = False
    last_checkpoint: float = field(default_factory=time.monotonic)
    last_models: float = field(default_factory=time.monotonic)


def tune_gc() -> None:
    """The analyzer holds many long-lived objects (states, subjects, detectors);
    with CPython's default thresholds the collector scans them again and again
    while batches allocate (measured in bench/analyzer.py: 41k samples/s on one
    core with the defaults, 107k with these). Collect less often."""
    gc.set_threshold(50_000, 20, 100)


class LostPartitionError(TransientError):
    """The partition was taken over or reset; the batch goes back to its queue."""


class AnalyzerService:
    def __init__(self, settings: AnalyzerSettings) -> None:
        self.settings = settings
        self.runtime = Runtime("analyzer", settings)
        self.broker = self.runtime.broker
        self.pool: asyncpg.Pool | None = None
        self.engine = Engine(settings)
        self.relay: OutboxRelay | None = None
        self.member = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.partitions = settings.analyzer_partitions
        self.owned: dict[int, Owned] = {}
        self._claiming: dict[int, asyncio.Lock] = {}
        self._evaluation = Incident("batch evaluation", log)
        self._parked: list[asyncio.Future[None]] = []
        #: forecast rules: when each is next due; burn_rate rules: last evaluated
        self.forecasts = ForecastSweep()
        self._burn_rate_at: dict[int, float] = {}
        self._events_started = self._events_applied = 0
        self.members = 1
        self.draining = False
        self.rules_loaded = False
        self.stopped = False
        self.batches_done = 0

    # -- lifecycle (run by nazar_common.runtime.worker.run_worker) --------------

    async def start(self) -> None:
        s, rt = self.settings, self.runtime
        self.pool = await rt.open_database(min_size=1)
        self.engine.history = store.PgHistory(self.pool)
        await rt.retry_database(self._load_config)
        reload = rt.every("reload", s.analyzer_reload_interval, self._load_config)
        rt.listen(reload.wake)  # rule changes apply within moments
        # events (deploys) too, on a channel of their own; also reloaded with the rules
        events = rt.every("events", s.analyzer_reload_interval, self._load_events)
        rt.listen(events.wake, channel=EVENTS_CHANNEL)
        rt.every("ticks", s.analyzer_sweep_interval, self._publish_ticks)
        rt.every("checkpoint", min(1.0, s.analyzer_checkpoint_interval / 2), self._checkpoints)
        rt.every("rebalance", s.analyzer_rebalance_interval, self._rebalance, run_first=True)
        self.relay = OutboxRelay(
            self.pool, rt.broker, s.analyzer_outbox_batch, on_published=OUTBOX_PUBLISHED.inc,
            exchanges=[ALERTS_EXCHANGE],
        )
        self.relay.start(rt.tasks)
        for p in range(self.partitions):
            self._subscribe(p)
        rt.start_broker()

    def _subscribe(self, p: int) -> None:
        async def handle(message: AbstractIncomingMessage) -> None:
            await self.handle(p, message)

        async def on_state(_: str, event: ConsumerEvent) -> None:
            if event == "detached":
                self._drop(p, "the subscription ended")

        self.runtime.consume(
            analyzer_partition(p),
            handle,
            prefetch=self.settings.analyzer_prefetch,
            on_state=on_state,
            drain_timeout=self.settings.analyzer_drain_timeout,
            # handing over closes the channel at once: what was not acknowledged
            # returns to the queue in order before the next owner receives any
            abandon=True,
        )

    def stopping(self) -> None:
        """Batches not yet evaluated go back to the queue; those evaluated are
        checkpointed (then acknowledged) at once."""
        self.draining = True
        for p in list(self.owned):
            self._checkpoint_soon(p)

    async def drain(self) -> None:
        """Consumers are stopped: leave the membership, relay what is left."""
        for p in list(self.owned):
            self._drop(p, "stopping")
        for parked in self._parked:
            if not parked.done():
                parked.set_exception(LostPartitionError("stopping"))
        if self.pool is None:
            return
        with contextlib.suppress(Exception):
            await store.leave(self.pool, self.member)
        if self.relay is not None:
            try:
                await asyncio.wait_for(self.relay.run_once(), 5.0)
            except Exception as exc:  # the rows stay in the outbox for the next relay
                log.warning("final outbox relay failed", extra={"error": str(exc)})

    async def stop(self) -> None:
        """Graceful drain: refuse new batches, checkpoint those evaluated, then close."""
        if self.stopped:
            return
        self.stopped = True
        await self.runtime.shutdown(stopping=self.stopping, drain=self.drain)
        log.info("analyzer stopped")

    @property
    def consuming(self) -> bool:
        consumers = self.runtime.broker.consumers()
        return all(
            consumers.get(analyzer_partition(p).name, False) for p in range(self.partitions)
        )

    def checks(self) -> dict[str, str]:
        return {
            "database": "ok" if self.pool is not None and self.rules_loaded else "unavailable",
            **self.runtime.checks(),
        }

    # -- ownership -------------------------------------------------------------------

    async def _own(self, p: int) -> Owned:
        """Partition ``p``'s state, taken over (claimed and restored) if needed."""
        # Always through the lock (it does not yield when free): deliveries
        # that waited for a restore keep their order ahead of later ones.
        lock = self._claiming.setdefault(p, asyncio.Lock())
        async with lock:
            owned = self.owned.get(p)
            if owned is not None:
                return owned
            assert self.pool is not None
            pool = self.pool

            async def take() -> Owned:
                epoch = await store.claim_partition(pool, p, self.member)
                rows = await store.load_partition(pool, p)
                state = PartitionState(p, epoch)
                self.engine.restore(state, rows)
                return Owned(state)

            owned = await self.runtime.retry_database(take, budget=30.0)
            self.owned[p] = owned
            TAKEOVERS.inc()
            OWNED.set(len(self.owned))
            log.info("partition taken over", extra={
                "partition": p, "epoch": owned.state.epoch, "states": len(owned.state.states)})
            return owned

    def _drop(self, p: int, why: str) -> None:
        """Forget partition ``p`` (its batches in flight return to the queue)."""
        owned = self.owned.pop(p, None)
        if owned is None:
            return
        self.engine.release(owned.state)
        self._fail(owned, why)
        OWNED.set(len(self.owned))
        log.info("partition released", extra={"partition": p, "reason": why})

    @staticmethod
    def _fail(owned: Owned, why: str) -> None:
        pending, owned.pending = owned.pending, []
        inbox, owned.inbox = owned.inbox, []
        for fut in pending + [f for _, f in inbox]:
            if not fut.done():
                fut.set_exception(LostPartitionError(why))

    # -- the consumer ---------------------------------------------------------------

    async def _park(self) -> None:
        """Hold a delivery unsettled until the subscription closes (it then
        returns to the queue in order; a requeue now would come straight back)."""
        parked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._parked.append(parked)
        await parked

    async def handle(self, p: int, message: AbstractIncomingMessage) -> None:
        if self.draining:
            await self._park()
        if is_tick(message.body):
            await self._tick(p)
            return
        try:
            batch = SampleBatchV1.from_bytes(message.body)
        except ValueError as exc:
            BATCHES.labels("invalid").inc()
            raise InvalidInputError(f"undecodable sample batch: {exc}") from exc
        owned = await self._own(p)
        if self.owned.get(p) is not owned:
            raise LostPartitionError("the partition was released")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        owned.inbox.append((batch, done))
        if owned.worker is None or owned.worker.done():
            owned.worker = asyncio.create_task(self._work(p, owned), name=f"partition-{p}")
        await done  # evaluated, then acknowledged once a checkpoint covers it

    async def _work(self, p: int, owned: Owned) -> None:
        """Evaluate the partition's delivered batches, several at a time (one
        detector-bank update per bank for all of them), in delivery order."""
        while owned.inbox:
            await asyncio.sleep(0)  # let the deliveries of this moment arrive
            if owned.fresh:
                owned.fresh = False
                if owned.state.epoch > 1:  # it had an owner: redeliveries may come
                    await self._gather(owned)
            async with owned.lock:
                if owned.releasing or self.draining or self.owned.get(p) is not owned:
                    return  # left unsettled: they return to the queue, in order
                items, owned.inbox = owned.inbox, []
                try:
                    await self._evaluate(owned, [b for b, _ in items])
                except Exception as exc:
                    BATCHES.labels("failed").inc(len(items))
                    for _, fut in items:
                        if not fut.done():
                            fut.set_exception(exc)
                    self._drop(p, "evaluation failed; restoring from the checkpoint")
                    return
                owned.pending += [fut for _, fut in items]
                BATCHES.labels("ok").inc(len(items))
                self.batches_done += len(items)
                due = (owned.state.samples_since_checkpoint
                       >= self.settings.analyzer_checkpoint_samples
                       or len(owned.pending) >= self.settings.analyzer_prefetch // 2)
            if due:
                self._checkpoint_soon(p)

    @staticmethod
    async def _gather(owned: Owned, quiet: float = 0.05, most: float = 1.0) -> None:
        """Wait until the burst of (re)deliveries after a takeover is in."""
        deadline = time.monotonic() + most
        while time.monotonic() < deadline:
            n = len(owned.inbox)
            await asyncio.sleep(quiet)
            if len(owned.inbox) == n:
                return

    async def _evaluate(self, owned: Owned, batches: list[SampleBatchV1]) -> None:
        engine = self.engine
        pairs = engine.pairs_of(*batches)
        if not pairs:
            return
        await engine.prepare(owned.state, pairs)
        if len(pairs) > 2000:
            outcome = await asyncio.to_thread(engine.evaluate, owned.state, pairs)
        else:
            outcome = engine.evaluate(owned.state, pairs)
        now = time.time()
        for batch in batches:
            if batch.times:
                LAG.observe(max(0.0, now - max(batch.times)))
        if outcome.changes:
            await self._record(outcome.changes)

    async def _record(self, changes: list[Change]) -> None:
        """Alert rows, transitions and outbox events of ``changes``, in one
        transaction (idempotent: a replayed transition is recorded once)."""
        assert self.pool is not None
        async with self.pool.acquire() as conn, conn.transaction():
            for c in changes:
                await store.record_transitions(
                    conn, c.rule, c.subject, c.status, c.transitions, c.start
                )
        if self.relay is not None:
            self.relay.wake()

    # -- checkpoints ----------------------------------------------------------------

    def _checkpoint_soon(self, p: int) -> None:
        name = f"checkpoint-{p}"
        if name not in self.runtime.tasks:
            self.runtime.tasks.spawn(name, lambda: self._checkpoint(p), restart=False)

    async def _checkpoints(self) -> None:
        """Checkpoint every owned partition whose interval has passed."""
        now = time.monotonic()
        s = self.settings
        for p, owned in list(self.owned.items()):
            state = owned.state
            due = (owned.pending or state.dirty or state.deleted) and (
                now - owned.last_checkpoint >= s.analyzer_checkpoint_interval)
            if due or (state.models_dirty and now - owned.last_models >= (
                    s.analyzer_state_flush_interval)):
                await self._checkpoint(p)

    async def _checkpoint(self, p: int) -> None:
        owned = self.owned.get(p)
        if owned is None:
            return
        assert self.pool is not None
        async with owned.lock:
            if self.owned.get(p) is not owned:
                return
            state = owned.state
            now = time.monotonic()
            models = []
            if state.models_dirty and (
                    now - owned.last_models >= self.settings.analyzer_state_flush_interval
                    or self.draining or owned.releasing):
                models = self.engine.dump_models(state)
                owned.last_models = now
            rows = [(k[0], state.subjects[k[1]], state.states[k]) for k in state.dirty
                    if k in state.states]
            pending, owned.pending = owned.pending, []
            started = time.perf_counter()
            try:
                ok = await store.checkpoint(self.pool, p, state.epoch, rows, list(state.deleted),
                                            models, state.samples_since_checkpoint)
            except Exception as exc:
                CHECKPOINTS.labels("failed").inc()
                owned.pending = pending + owned.pending
                self._drop(p, f"checkpoint failed: {type(exc).__name__}")
                return
            if not ok:
                CHECKPOINTS.labels("fenced").inc()
                owned.pending = pending + owned.pending
                self._drop(p, "another replica took the partition over")
                return
            CHECKPOINT_SECONDS.observe(time.perf_counter() - started)
            CHECKPOINTS.labels("ok").inc()
            state.dirty.clear()
            state.deleted.clear()
            state.samples_since_checkpoint = 0
            owned.last_checkpoint = now
        for fut in pending:
            if not fut.done():
                fut.set_result(None)

    # -- rebalancing ----------------------------------------------------------------

    async def _rebalance(self) -> None:
        """Heartbeat; hand over the partitions beyond this replica's share."""
        assert self.pool is not None
        if self.draining:
            return
        self.members = await store.heartbeat(
            self.pool, self.member, 3 * self.settings.analyzer_rebalance_interval
        )
        MEMBERS.set(self.members)
        share = math.ceil(self.partitions / max(self.members, 1))
        excess = sorted(self.owned)[share:] if len(self.owned) > share else []
        for p in excess:
            await self._hand_over(p)

    async def _hand_over(self, p: int) -> None:
        owned = self.owned.get(p)
        if owned is None:
            return
        owned.releasing = True  # nothing more is evaluated
        await self._checkpoint(p)  # what was, is acknowledged
        name = analyzer_partition(p).name
        # the channel closes: the rest returns to the queue in order, then the
        # broker activates the next subscriber
        await self.broker.remove_consumer(name)
        self._drop(p, "handed over")
        HANDOVERS.inc()
        if not self.draining:
            self._subscribe(p)  # at the back of the line

    # -- sweeps (driven by tick messages, in order with the partition's batches) ------

    async def _publish_ticks(self) -> None:
        if not self.broker.connected:
            return
        now = time.time()
        body = tick_body(now)
        await asyncio.gather(*(
            self.broker.publish(SAMPLES_EXCHANGE, partition_routing_key(p), body,
                                message_id=str(uuid.uuid4()))
            for p in range(self.partitions)
        ))

    async def _tick(self, p: int) -> None:
        owned = await self._own(p)
        now = time.time()
        if now - owned.state.last_sweep < self.settings.analyzer_sweep_interval * 0.5:
            return
        changes: list[Change] = []
        seen = {r.id: await self._absence_seen(r, p) for r in self.engine.rules.absence_rules}
        async with owned.lock:
            if self.owned.get(p) is not owned or owned.releasing:
                return
            state = owned.state
            for rule in self.engine.rules.absence_rules:
                changes += self.engine.absence(state, rule, now, seen[rule.id])
            changes += self.engine.nodata(state, now)
            orphans = self.engine.orphans(state)
            if orphans:
                assert self.pool is not None
                ids = [i for k in orphans if (i := state.states[k].alert_id) is not None]
                alerts = await store.alert_rows(self.pool, ids) if ids else {}
                changes += self.engine.close_orphans(state, orphans, alerts, now)
            state.last_sweep = now
            if changes:
                await self._record(changes)
        if changes or orphans:
            await self._checkpoint(p)  # wall-clock transitions: never replayed
        if p == 0:  # the periodic kinds concern no host: the owner of partition 0 runs them
            await self._periodic_kinds(now)

    async def _periodic_kinds(self, now: float) -> None:
        """Forecast and burn_rate rules: measured in the database, their states
        in rows locked per evaluation (as before partitioning: they are few)."""
        assert self.pool is not None
        engine = self.engine
        forecast_rules = [r for r in engine.rules.rules.values() if r.kind == "forecast"]
        events = await self.forecasts.run(self.pool, forecast_rules, engine.hosts,
                                          engine.deploys, now)
        for rule in engine.rules.burn_rate_rules:
            events += await self._burn_rate(rule, now)
        events += await self._close_deleted_periodic(now)
        if events and self.relay is not None:
            self.relay.wake()

    async def _close_deleted_periodic(self, now: float) -> list[AlertEventV1]:
        """Open alerts of deleted or disabled forecast and burn_rate rules are
        resolved, and their states forgotten."""
        assert self.pool is not None
        events: list[AlertEventV1] = []
        async with self.pool.acquire() as conn, conn.transaction():
            orphans = await store.lock_unpartitioned_orphans(conn, list(self.engine.rules.rules))
            if not orphans:
                return events
            ids = [i for status, _, _ in orphans.values() if (i := status.alert_id) is not None]
            alerts = await store.alert_rows(conn, ids) if ids else {}
            for (rule_id, key), (status, host, series_id) in orphans.items():
                alert = alerts.get(status.alert_id) if status.alert_id is not None else None
                if alert is None:
                    continue
                subject = Subject(key, host, series_id, alert["metric"])
                change = self.engine.close_deleted(rule_id, subject, status, alert, now)
                if change is not None:
                    events += await store.record_transitions(
                        conn, change.rule, subject, status, change.transitions, change.start
                    )
            await store.delete_states(conn, orphans)
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
        slo = self.engine.slos.get(params.slo)
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
        events: list[AlertEventV1] = []
        async with self.pool.acquire() as conn:
            await store.ensure_states(conn, [(rule.id, subject)])
            async with conn.transaction():
                states = await store.lock_states(conn, [(rule.id, subject.key)],
                                                 skip_locked=True)
                for status in states.values():
                    start = status.alert_id
                    transitions = self.engine.machine(rule).step(status, observation)
                    if transitions:
                        events += await store.record_transitions(
                            conn, rule, subject, status, transitions, start
                        )
                await store.save_states(conn, states)
        return events

    async def _absence_seen(self, rule: Rule, p: int) -> dict[str, tuple[Subject, float | None]]:
        """Subjects of absence rule ``rule`` in partition ``p`` and when each was last seen."""
        assert self.pool is not None
        lookback = self.settings.analyzer_absence_lookback
        hosts = self.engine.hosts
        seen: dict[str, tuple[Subject, float | None]] = {}
        if rule.spec.metric is None:
            for host, labels, ts in await store.host_last_seen(self.pool, lookback, []):
                if partition_of(host, self.partitions) == p and rule.matches_host(host, labels):
                    subject = Subject(host_subject(host), host, None, None, (),
                                      tuple(sorted(labels.items())))
                    seen[subject.key] = (subject, ts)
            return seen
        series = await store.matching_series(
            self.pool, rule.spec.metric, rule.spec.match_series_labels,
            rule.spec.selector.hosts or None, 100_000,
        )
        series = [s for s in series if partition_of(s.host, self.partitions) == p
                  and rule.matches_host(s.host, hosts.get(s.host, {}))]
        last = await store.series_last_seen(self.pool, [s.id for s in series], lookback)
        for s in series:
            if s.id in last:
                subject = Subject(
                    series_subject(s.id), s.host, s.id, s.metric,
                    tuple(sorted(s.labels.items())), tuple(sorted(hosts.get(s.host, {}).items())),
                )
                seen[subject.key] = (subject, last[s.id])
        return seen

    # -- configuration ----------------------------------------------------------------

    async def _load_config(self) -> None:
        assert self.pool is not None
        rules = await store.load_rules(self.pool)
        hosts = await store.load_hosts(self.pool)
        self.engine.slos = await store.load_slos(self.pool)
        await self._load_events()
        self.engine.configure(rules, hosts)
        self.rules_loaded = True
        RULES.set(len(self.engine.rules.rules))

    async def _load_events(self) -> None:
        """Recent events; a load that started earlier than the one last applied
        (the rules' reload and the events' NOTIFY race) is dropped, never
        applied over newer events."""
        assert self.pool is not None
        self._events_started += 1
        started = self._events_started
        events = await store.load_events(
            self.pool, self.settings.analyzer_events_lookback, MAX_EVENTS
        )
        if started > self._events_applied:
            self._events_applied = started
            self.engine.set_events(events)

