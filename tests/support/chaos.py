"""Chaos scenarios: one fault at a time under steady agent-shaped load, and
what it cost. Used by ``tests/chaos`` (short, in ``make test``) and
``bench/chaos.py`` (longer, more hosts, a table).

The load is what agents send: every host posts a batch of samples every
``interval`` seconds with an ``Idempotency-Key``, and retries the same body
with the same key until it is answered ``202`` (as ``nazar-agent`` does).
During each fault one *spike* host reports ``chaos.cpu = 99``, above the
threshold of the rule ``chaos-cpu``: exactly one alert must open for it and
its firing notification must reach the webhook receiver.

After each scenario (the load stopped, its retries finished):

* every sample answered ``202`` is stored exactly once;
* the spike's alert opened exactly once, and its notification arrived
  (repeats counted: only a notifier SIGKILL may cause one, with the same key);
* for broker faults: every consumer back within 10 s of the broker's
  return, and ``/readyz`` of the analyzer and the notifier ``503`` meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from nazar_common.runtime.backoff import wait_event
from tests.integration.notifier.support import Answer
from tests.support.stack import ReadinessProbe, Stack, wait_for

CHANNEL = "chaos-hook"
RULE = "chaos-cpu"
SPIKE_METRIC = "chaos.cpu"
METRICS = ("chaos.cpu", "chaos.mem", "chaos.load", "chaos.disk")
HOST_PREFIX = "chaos-"
#: How long the webhook receiver takes per message (a slow receiver makes
#: notifier faults meet deliveries in flight).
RECEIVER_DELAY = 0.3


async def prepare(stack: Stack) -> None:
    """The channel and the rule the scenarios expect."""
    assert stack.receiver is not None
    stack.receiver.default = Answer(delay=RECEIVER_DELAY)
    await stack.add_webhook_channel(CHANNEL)
    await stack.put_rule({"name": RULE, "metric": SPIKE_METRIC, "channels": [CHANNEL],
                          "params": {"kind": "threshold", "comparator": ">", "value": 90}})


# --------------------------------------------------------------------------- load


@dataclass
class Host:
    name: str
    spike: bool = False
    sent: int = 0  # batches answered 202
    first_accepted: float | None = None


class AgentLoad:
    """``hosts`` agents posting ``len(METRICS)`` samples every ``interval`` s."""

    def __init__(self, stack: Stack, hosts: int, interval: float, tag: str) -> None:
        self.stack = stack
        self.interval = interval
        self.hosts = [Host(f"{HOST_PREFIX}{tag}-{i}") for i in range(hosts)]
        self.accepted = 0  # samples answered 202
        self.retries = 0
        self.rejected: list[str] = []  # 4xx other than 408/429: a bug
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None

    def start(self) -> AgentLoad:
        self._client = self.stack.api(self.stack.ingest_key)
        for host in self.hosts:
            self._tasks.append(asyncio.create_task(self._agent(host)))
        return self

    def spike(self, name: str, ticks: int = 3) -> Host:
        """A host whose cpu is 99 for ``ticks`` batches (then it goes quiet)."""
        host = Host(f"{HOST_PREFIX}{name}", spike=True)
        self.hosts.append(host)
        self._tasks.append(asyncio.create_task(self._agent(host, ticks)))
        return host

    async def stop(self, timeout: float = 60.0) -> None:
        """No new batches; batches being retried are retried until accepted."""
        self._stop.set()
        done, pending = await asyncio.wait(self._tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for task in done:
            task.result()
        if self._client is not None:
            await self._client.aclose()
        assert not pending, f"{len(pending)} agents still retrying after {timeout} s"

    async def _agent(self, host: Host, ticks: int | None = None) -> None:
        await asyncio.sleep(random.uniform(0, self.interval))
        n = 0
        while not self._stop.is_set() and (ticks is None or n < ticks):
            now = time.time()
            samples = [{"metric": m, "timestamp": now,
                        "value": 99.0 if host.spike and m == SPIKE_METRIC
                        else round(random.uniform(5, 60), 3)} for m in METRICS]
            await self._post(host, {"host": host.name, "samples": samples})
            n += 1
            await wait_event(self._stop, self.interval)

    async def _post(self, host: Host, body: dict[str, Any]) -> None:
        assert self._client is not None
        key = uuid.uuid4().hex
        delay = 0.2
        while True:
            try:
                r = await self._client.post("/api/v1/metrics", json=body,
                                            headers={"Idempotency-Key": key}, timeout=5.0)
                status = r.status_code
            except httpx.HTTPError:
                status = 0
            if status == 202:
                self.accepted += len(body["samples"])
                host.sent += 1
                if host.first_accepted is None:
                    host.first_accepted = time.time()
                return
            if status and 400 <= status < 500 and status not in (408, 429):
                self.rejected.append(f"{status}: {r.text[:200]}")
                return
            self.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)


# --------------------------------------------------------------------------- faults


@dataclass
class FaultWindow:
    """When the fault took something away, when restoring began and when it
    was back (monotonic seconds), once per outage."""

    outages: list[tuple[float, float, float]] = field(default_factory=list)
    broker: bool = False
    #: Seconds from each broker return until every consumer was attached again.
    consumers_back: list[float] = field(default_factory=list)
    #: Scales how long each fault lasts.
    hold: float = 1.0
    _down: float = 0.0
    _restoring: float = 0.0

    def down(self) -> None:
        self._down = time.monotonic()

    def restoring(self) -> None:
        self._restoring = time.monotonic()

    def back(self) -> None:
        self.outages.append((self._down, self._restoring or time.monotonic(), time.monotonic()))
        self._restoring = 0.0


Fault = Callable[[Stack, AgentLoad, FaultWindow], Awaitable[None]]


async def _broker_back(stack: Stack, w: FaultWindow) -> None:
    w.back()
    try:
        w.consumers_back.append(await wait_for(stack.all_consumers_attached, 30, "consumers"))
    except AssertionError:
        w.consumers_back.append(float("inf"))


async def _rabbit_stop_app_twice(stack: Stack, load: AgentLoad, w: FaultWindow) -> None:
    w.broker = True
    for i in range(2):
        await asyncio.to_thread(stack.mq.stop_app)
        w.down()
        if i == 0:
            load.spike("spike-mq-app")
        await asyncio.sleep(2.0 * w.hold)
        w.restoring()
        await asyncio.to_thread(stack.mq.start_app)
        await _broker_back(stack, w)


async def _rabbit_node_restart_twice(stack: Stack, load: AgentLoad, w: FaultWindow) -> None:
    w.broker = True
    for i in range(2):
        await stack.mq.astop("graceful")
        w.down()
        if i == 0:
            load.spike("spike-mq-node")
        await asyncio.sleep(1.0 * w.hold)
        w.restoring()
        await stack.mq.astart()
        await _broker_back(stack, w)


def _postgres(mode: str) -> Fault:
    async def fault(stack: Stack, load: AgentLoad, w: FaultWindow) -> None:
        await stack.pg.astop(mode)  # type: ignore[arg-type]
        w.down()
        load.spike(f"spike-pg-{mode}")
        await asyncio.sleep(3.0 * w.hold)
        w.restoring()
        await stack.pg.astart()
        w.back()

    return fault


def _service(name: str, sig: signal.Signals) -> Fault:
    async def fault(stack: Stack, load: AgentLoad, w: FaultWindow) -> None:
        service = stack.services[name]
        spike = f"spike-{name}-{sig.name.lower()}"
        if name == "notifier":
            # Stop it while the spike's notification is being delivered.
            assert stack.receiver is not None
            receiver = stack.receiver

            async def in_delivery() -> bool:
                return any(r.body["alerts"][0]["labels"].get("host") == HOST_PREFIX + spike
                           for r in receiver.requests)

            load.spike(spike)
            await wait_for(in_delivery, 30, "the spike's notification in delivery")
        w.down()
        await service.stop(sig)
        if name != "notifier":
            load.spike(spike)
            await asyncio.sleep(1.0 * w.hold)
        w.restoring()
        service.start()
        await service.wait_ready()
        w.back()

    return fault


@dataclass(frozen=True)
class Scenario:
    name: str
    fault: Fault
    #: Notification repeats allowed (deliveries in flight at a SIGKILL).
    repeats_allowed: int = 0


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("rabbitmq stop_app/start_app x2", _rabbit_stop_app_twice),
    Scenario("rabbitmq node restart x2", _rabbit_node_restart_twice),
    Scenario("postgresql fast shutdown", _postgres("fast")),
    Scenario("postgresql immediate shutdown", _postgres("immediate")),
    Scenario("ingest SIGTERM", _service("ingest", signal.SIGTERM)),
    Scenario("ingest SIGKILL", _service("ingest", signal.SIGKILL)),
    Scenario("analyzer SIGTERM", _service("analyzer", signal.SIGTERM)),
    Scenario("analyzer SIGKILL", _service("analyzer", signal.SIGKILL)),
    Scenario("notifier SIGTERM", _service("notifier", signal.SIGTERM)),
    Scenario("notifier SIGKILL", _service("notifier", signal.SIGKILL), repeats_allowed=1),
)


# --------------------------------------------------------------------------- checks


@dataclass
class Result:
    scenario: str
    accepted: int = 0
    stored: int = 0
    stored_twice: int = 0
    retries: int = 0
    rejected: int = 0
    alerts_expected: int = 0
    alerts_opened: int = 0
    notifications: int = 0
    repeats: int = 0
    distinct_keys: int = 0
    consumers_back: float | None = None
    readyz_503: bool | None = None
    outage: float = 0.0
    stored_after: float = 0.0  # after the fault ended, until every sample was stored
    alert_delay: float = 0.0  # spike accepted -> firing notification received
    repeat_after: float | None = None  # first delivery -> its repeat
    problems: list[str] = field(default_factory=list)

    def row(self) -> list[str]:
        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}"

        return [self.scenario, str(self.accepted), str(self.stored), str(self.stored_twice),
                f"{self.alerts_opened}/{self.alerts_expected}",
                f"{self.distinct_keys}/{self.alerts_expected}", str(self.repeats),
                fmt(self.consumers_back), {None: "-", True: "yes", False: "NO"}[self.readyz_503],
                fmt(self.outage), fmt(self.stored_after), fmt(self.alert_delay),
                fmt(self.repeat_after), str(self.retries)]


HEADER = ["scenario", "202 samples", "stored", "stored twice", "alerts opened",
          "notified", "repeats", "consumers back s", "readyz 503", "outage s",
          "stored +s", "alert->notify s", "repeat +s", "agent retries"]


def table(results: list[Result]) -> str:
    rows = [HEADER, *(r.row() for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


async def _fetch(stack: Stack, sql: str, *args: Any) -> list[Any]:
    try:
        return await stack.fetch(sql, *args)
    except (OSError, Exception):
        return []


async def stored_counts(stack: Stack, hosts: list[str]) -> tuple[int, int]:
    """Samples of ``hosts`` stored, and how many of them are repeats."""
    rows = await _fetch(
        stack, "SELECT count(*) AS n, count(DISTINCT (s.series_id, s.time)) AS d FROM samples s "
        "JOIN series x ON x.id = s.series_id WHERE x.host = ANY($1)", hosts)
    if not rows:
        return -1, -1
    return int(rows[0]["n"]), int(rows[0]["n"] - rows[0]["d"])


async def run(stack: Stack, scenario: Scenario, *, hosts: int = 6, interval: float = 1.0,
              warmup: float = 1.5, settle: float = 1.5, hold: float = 1.0) -> Result:
    """One scenario under ``hosts`` agents posting every ``interval`` s; the
    fault lasts ``hold`` times its usual length."""
    result = Result(scenario.name)
    tag = scenario.name.split()[0][:4] + uuid.uuid4().hex[:4]
    probe = ReadinessProbe(stack).start()
    load = AgentLoad(stack, hosts, interval, tag).start()
    window = FaultWindow(hold=hold)
    try:
        await asyncio.sleep(warmup)
        await scenario.fault(stack, load, window)
        result.outage = sum(back - down for down, _, back in window.outages)
        if window.broker:
            result.consumers_back = max(window.consumers_back)
            readyz = [s for down, restoring, _ in window.outages
                      for name in ("analyzer", "notifier")
                      for s, _ in probe.between(down + 0.5, restoring, name)]
            result.readyz_503 = bool(readyz) and all(s == 503 for s in readyz)
        await asyncio.sleep(settle)
    finally:
        await load.stop()
        await probe.stop()
    result.retries = load.retries
    result.rejected = len(load.rejected)
    result.accepted = load.accepted
    names = [h.name for h in load.hosts]
    ended = time.monotonic()

    async def all_stored() -> bool:
        n, _ = await stored_counts(stack, names)
        return n >= result.accepted

    with contextlib.suppress(AssertionError):
        await wait_for(all_stored, 60, "every accepted sample stored")
    result.stored_after = time.monotonic() - ended
    await asyncio.sleep(0.5)  # anything stored twice would show now
    result.stored, result.stored_twice = await stored_counts(stack, names)

    spikes = [h for h in load.hosts if h.spike]
    result.alerts_expected = len(spikes)
    assert stack.receiver is not None
    receiver = stack.receiver
    spike_names = {h.name for h in spikes}

    def firing() -> list[Any]:
        return [r for r in receiver.requests if r.body["nazar"]["kind"] == "firing"
                and r.body["alerts"][0]["labels"].get("host") in spike_names]

    async def notified() -> bool:
        return len({r.headers["idempotency-key"] for r in firing()}) >= len(spikes)

    with contextlib.suppress(AssertionError):
        await wait_for(notified, 60, "the spikes' firing notifications")
    await asyncio.sleep(0.5)
    rows = await _fetch(stack, "SELECT count(*) AS n FROM alerts WHERE host = ANY($1) "
                        "AND rule_name = $2 AND fired_at IS NOT NULL", list(spike_names), RULE)
    result.alerts_opened = int(rows[0]["n"]) if rows else -1
    received = firing()
    keys = [r.headers["idempotency-key"] for r in received]
    result.notifications = len(received)
    result.distinct_keys = len(set(keys))
    result.repeats = len(keys) - len(set(keys))
    first_spike = min((h.first_accepted for h in spikes if h.first_accepted), default=None)
    if received and first_spike is not None:
        result.alert_delay = min(r.at for r in received) - first_spike
    arrivals: dict[str, list[float]] = {}
    for r in received:
        arrivals.setdefault(r.headers["idempotency-key"], []).append(r.at)
    gaps = [a[-1] - a[0] for a in arrivals.values() if len(a) > 1]
    result.repeat_after = max(gaps) if gaps else None

    if result.rejected:
        result.problems.append(f"rejected: {load.rejected[:3]}")
    if result.stored != result.accepted:
        result.problems.append(f"stored {result.stored} of {result.accepted} accepted")
    if result.stored_twice:
        result.problems.append(f"{result.stored_twice} samples stored twice")
    if result.alerts_opened != result.alerts_expected:
        result.problems.append(f"alerts opened {result.alerts_opened}, "
                               f"expected {result.alerts_expected}")
    if result.distinct_keys != result.alerts_expected:
        result.problems.append(f"notifications {result.distinct_keys} distinct, "
                               f"expected {result.alerts_expected}")
    if result.repeats > scenario.repeats_allowed:
        result.problems.append(f"{result.repeats} notifications repeated")
    if window.broker:
        if result.consumers_back is None or result.consumers_back >= 10:
            result.problems.append(f"consumers back after {result.consumers_back} s")
        if not result.readyz_503:
            result.problems.append("readyz was not 503 while the consumers were missing")
    return result
