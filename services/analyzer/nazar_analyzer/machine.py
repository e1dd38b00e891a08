"""The alert state machine shared by every rule kind (pure, no I/O).

States of one subject (a series or a host) under one rule::

    normal --breach--> pending --held for `for`--> firing --clear--> resolved (= normal)
       \\--breach, for = 0------------------------->/
    pending --clear--> normal (the pending alert is cancelled)
    firing  --clear, but within keep_firing_for of the last breach--> firing
    pending / firing --no data for a while--> nodata --data again--> firing / resolved / normal

An *observation* says whether the condition holds (``breach``) and whether,
for a firing alert, it has cleared (``clear``; differs from ``not breach``
with hysteresis). Time is the sample time for sample-driven rules and the
wall clock for absence rules, so a backtest replays exactly what the live
service does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

#: States a subject can be in (``resolved`` is an alert's terminal state;
#: the subject itself is then ``normal`` again).
NORMAL, PENDING, FIRING, RESOLVED, NODATA = "normal", "pending", "firing", "resolved", "nodata"
OPEN_STATES = (PENDING, FIRING, NODATA)


@dataclass(frozen=True, slots=True)
class Observation:
    ts: float
    breach: bool
    value: float | None = None
    clear: bool | None = None  # None: not breach
    low: float | None = None
    high: float | None = None
    centre: float | None = None
    score: float | None = None
    explanation: str | None = None
    contributors: tuple[str, ...] = ()

    @property
    def cleared(self) -> bool:
        return (not self.breach) if self.clear is None else self.clear


@dataclass(slots=True)
class Status:
    """What is remembered per (rule, subject) between observations."""

    state: str = NORMAL
    since: float | None = None  # start of the open alert (first breach)
    fired_at: float | None = None
    last_breach: float | None = None
    last_ts: float | None = None  # last observation (sample) time
    prior: str | None = None  # the state before nodata
    alert_id: int | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    previous: str
    state: str  # pending, firing, resolved, normal (pending cancelled), nodata
    at: float
    started_at: float
    observation: Observation | None = None
    new_alert: bool = False  # opens a new alert (incident)
    #: Annotations added by the analyzer (e.g. the deploy the alert started after).
    annotations: tuple[tuple[str, str], ...] = ()

    @property
    def closes(self) -> bool:
        return self.state in (RESOLVED, NORMAL)


@dataclass(slots=True)
class Machine:
    """Timing parameters of one rule."""

    for_: float = 0.0
    keep_firing_for: float = 0.0
    transitions: list[Transition] = field(default_factory=list)

    def step(self, status: Status, obs: Observation) -> list[Transition]:
        """Advance ``status`` (in place) by one observation; returns the transitions."""
        out: list[Transition] = []
        if status.state == NODATA:
            self._leave_nodata(status, obs, out)
        st = status.state
        if st == NORMAL:
            if obs.breach:
                status.since = obs.ts
                status.last_breach = obs.ts
                if self.for_ <= 0:
                    status.state, status.fired_at = FIRING, obs.ts
                    out.append(Transition(NORMAL, FIRING, obs.ts, obs.ts, obs, new_alert=True))
                else:
                    status.state = PENDING
                    out.append(Transition(NORMAL, PENDING, obs.ts, obs.ts, obs, new_alert=True))
        elif st == PENDING:
            assert status.since is not None
            if not obs.breach:
                out.append(Transition(PENDING, NORMAL, obs.ts, status.since, obs))
                self._reset(status)
            else:
                status.last_breach = obs.ts
                if obs.ts - status.since >= self.for_:
                    status.state, status.fired_at = FIRING, obs.ts
                    out.append(Transition(PENDING, FIRING, obs.ts, status.since, obs))
        elif st == FIRING:
            assert status.since is not None
            if not obs.cleared:
                status.last_breach = obs.ts
            elif obs.ts - (obs.ts if status.last_breach is None else status.last_breach) >= (
                self.keep_firing_for
            ):
                out.append(Transition(FIRING, RESOLVED, obs.ts, status.since, obs))
                self._reset(status)
        status.last_ts = obs.ts if status.last_ts is None else max(status.last_ts, obs.ts)
        return out

    def _leave_nodata(self, status: Status, obs: Observation, out: list[Transition]) -> None:
        prior = status.prior or NORMAL
        status.prior = None
        if prior != FIRING or status.since is None:
            self._reset(status)
            return
        if not obs.cleared:
            status.state = FIRING
            status.last_breach = obs.ts
            out.append(Transition(NODATA, FIRING, obs.ts, status.since, obs))
        else:
            out.append(Transition(NODATA, RESOLVED, obs.ts, status.since, obs))
            self._reset(status)
            status.state = NORMAL

    def no_data(self, status: Status, now: float) -> list[Transition]:
        """The subject stopped reporting: pending alerts are cancelled, firing ones
        go to ``nodata`` (still open), a normal subject becomes ``nodata`` silently."""
        st = status.state
        if st == NODATA:
            return []
        if st == FIRING and status.since is not None:
            status.prior, status.state = FIRING, NODATA
            return [Transition(FIRING, NODATA, now, status.since, None)]
        out = []
        if st == PENDING and status.since is not None:
            out.append(Transition(PENDING, NORMAL, now, status.since, None))
        self._reset(status)
        status.prior, status.state = NORMAL, NODATA
        return out

    def close(self, status: Status, now: float, reason: str) -> list[Transition]:
        """Force-close an open alert (its rule was deleted, disabled or changed scope)."""
        if status.state == NORMAL or status.since is None:
            self._reset(status)
            return []
        previous = status.state
        target = NORMAL if previous == PENDING else RESOLVED
        obs = Observation(now, False, explanation=reason)
        since = status.since
        self._reset(status)
        return [Transition(previous, target, now, since, obs)]

    @staticmethod
    def _reset(status: Status) -> None:
        status.state = NORMAL
        status.since = None
        status.fired_at = None
        status.last_breach = None
        status.prior = None
        status.alert_id = None


def copy_status(status: Status) -> Status:
    return replace(status)
