"""Alerts and deploys (pure: no I/O; times are Unix seconds passed in).

A rule with ``deploys`` relates its alerts to events (by default of kind
``deploy``) that touch the alert's host — by name, by a label selector
matching the host's labels, or fleet-wide:

* **annotate** (``annotate_within``): an alert that starts during a deploy
  or within ``annotate_within`` after it carries the deploy in its
  annotations (``deploy``, ``deploy_event_id``, ``deploy_link``) and, while
  it opens or fires, in its explanation: "started 4 min after deploy web
  v1.2.3 (event 12)". Every rule kind may be annotated.
* **hold** (``hold_for``, baseline and anomaly rules only): a new version may
  legitimately move a series' normal level, so the detector *re-learns*: at
  the deploy's reset time (its ``end`` if given, else its ``start``) the
  series' detector is replaced by a fresh one that learns only from the
  points from then on and needs only ``hold_for`` worth of them (at least
  the detector's minimum) before it judges; and from the deploy's start until
  ``hold_for`` after its reset time no alert opens (an observation that
  would open one is recorded as held). Threshold and absence rules do not
  learn and are never held (the rule schema refuses ``hold_for`` on them).

Everything here is a function of the events and the points, so a replay
(another replica, a restart) takes the same decisions. Backtests do not
apply deploys.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from nazar_analyzer.machine import NORMAL, Machine, Observation, Status, Transition
from nazar_common.schemas.config import HOLDABLE_KINDS, RuleSpec
from nazar_common.schemas.events import Event

#: Most events kept in memory (the newest).
MAX_EVENTS = 10_000
#: Event times are stored to the microsecond; a sample at the same time
#: as an event counts as at or after it.
TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class Mark:
    """An event as the analyzer uses it."""

    id: int
    kind: str
    name: str  # "deploy web v1.2.3"
    start: float
    end: float | None
    link: str | None

    @property
    def reset_at(self) -> float:
        """When the new version is fully out: the detector re-learns from here."""
        return self.start if self.end is None else max(self.end, self.start)


class DeployIndex:
    """Recent events, and which of them touch a host (cached per host)."""

    def __init__(self, events: Iterable[Event] = ()) -> None:
        self.events = sorted(events, key=lambda e: (e.start, e.id))[-MAX_EVENTS:]
        self._touching: dict[tuple[str, tuple[tuple[str, str], ...], tuple[str, ...]],
                             tuple[list[Mark], list[float], list[float]]] = {}

    def __len__(self) -> int:
        return len(self.events)

    def touching(
        self, host: str, host_labels: Mapping[str, str], kinds: Sequence[str]
    ) -> tuple[list[Mark], list[float], list[float]]:
        """Events of ``kinds`` touching ``host``, by start; their starts and reset times."""
        labels = tuple(sorted(host_labels.items()))
        key = (host, labels, tuple(kinds))
        hit = self._touching.get(key)
        if hit is None:
            marks = [
                Mark(e.id, e.kind, e.describe(), e.start.timestamp(),
                     None if e.end is None else e.end.timestamp(), e.link)
                for e in self.events
                if e.kind in kinds and e.touches(host, host_labels)
            ]
            resets = sorted(m.reset_at for m in marks)
            hit = (marks, [m.start for m in marks], resets)
            if len(self._touching) > 100_000:
                self._touching.clear()
            self._touching[key] = hit
        return hit


@dataclass(frozen=True, slots=True)
class Deploys:
    """The events that concern one (rule, host), for the evaluation path."""

    marks: list[Mark]
    starts: list[float]
    resets: list[float]
    annotate_within: float | None
    hold_for: float | None

    @classmethod
    def of(
        cls, spec: RuleSpec, index: DeployIndex, host: str, host_labels: Mapping[str, str]
    ) -> Deploys | None:
        """None when the rule does not care about deploys or none touched the host."""
        params = spec.deploys
        if params is None or (params.annotate_within is None and params.hold_for is None):
            return None
        marks, starts, resets = index.touching(host, host_labels, params.kinds)
        if not marks:
            return None
        hold = params.hold_for if spec.params.kind in HOLDABLE_KINDS else None
        return cls(marks, starts, resets, params.annotate_within, hold)

    # -- hold ------------------------------------------------------------------

    @property
    def holds(self) -> bool:
        return self.hold_for is not None

    def last_reset(self, ts: float) -> float | None:
        """The latest reset time at or before ``ts`` (None without hold)."""
        if self.hold_for is None:
            return None
        i = bisect.bisect_right(self.resets, ts + TOLERANCE)
        return self.resets[i - 1] if i else None

    def resets_between(self, origin: float | None, until: float) -> list[float]:
        """Reset times after ``origin`` (None: any) and at or before ``until``, in order."""
        if self.hold_for is None:
            return []
        hi = bisect.bisect_right(self.resets, until + TOLERANCE)
        lo = 0 if origin is None else bisect.bisect_right(self.resets, origin + TOLERANCE)
        return self.resets[lo:hi]

    def needs_reset(self, origin: float | None, ts: float) -> float | None:
        """The reset time to apply before judging the point at ``ts``, if the
        detector (learning since ``origin``; None: unknown) predates it."""
        reset = self.last_reset(ts)
        if reset is None or (origin is not None and origin >= reset - TOLERANCE):
            return None
        return reset

    def holding(self, ts: float) -> Mark | None:
        """The deploy whose grace period covers ``ts`` (the latest such)."""
        if self.hold_for is None:
            return None
        found = None
        for m in self.marks[: bisect.bisect_right(self.starts, ts + TOLERANCE)]:
            if ts < m.reset_at + self.hold_for:
                found = m
        return found

    def hold(self, obs: Observation, mark: Mark) -> Observation:
        """``obs`` with its breach held back: no alert opens in the grace period."""
        assert self.hold_for is not None
        until = mark.reset_at + self.hold_for
        note = (f"held: {ago(obs.ts - mark.start)} after {mark.name} (event {mark.id}); "
                f"the detector re-learns, no alert opens for {ago(until - obs.ts)} more")
        text = f"{obs.explanation} — {note}" if obs.explanation else note
        return replace(obs, breach=False, clear=None, explanation=text)

    # -- annotate --------------------------------------------------------------

    def near(self, started_at: float) -> Mark | None:
        """The latest deploy that ``started_at`` falls in or within
        ``annotate_within`` after."""
        if self.annotate_within is None:
            return None
        found = None
        for m in self.marks[: bisect.bisect_right(self.starts, started_at + TOLERANCE)]:
            if started_at <= (m.end if m.end is not None else m.start) + self.annotate_within:
                found = m
        return found

    def annotate(self, transitions: list[Transition]) -> list[Transition]:
        """The transitions with the deploy their alert started after, if any."""
        if self.annotate_within is None or not transitions:
            return transitions
        out = []
        for tr in transitions:
            mark = self.near(tr.started_at)
            if mark is None:
                out.append(tr)
                continue
            text = describe_after(mark, tr.started_at)
            annotations = {"deploy": text, "deploy_event_id": str(mark.id)}
            if mark.link:
                annotations["deploy_link"] = mark.link
            obs = tr.observation
            if obs is not None and tr.state in ("pending", "firing"):
                note = f"{text} (event {mark.id})"
                obs = replace(obs, explanation=f"{obs.explanation}; {note}"
                              if obs.explanation else note)
            out.append(replace(tr, observation=obs,
                               annotations=tuple(sorted(annotations.items()))))
        return out


@dataclass(slots=True)
class HeldMachine(Machine):
    """The state machine of a rule held after deploys: an observation that
    would open an alert in a deploy's grace period is held back instead."""

    deploys: Deploys | None = None
    held: int = 0  # observations held back

    def step(self, status: Status, obs: Observation) -> list[Transition]:
        if obs.breach and status.state == NORMAL and self.deploys is not None:
            mark = self.deploys.holding(obs.ts)
            if mark is not None:
                obs = self.deploys.hold(obs, mark)
                self.held += 1
        return Machine.step(self, status, obs)


def describe_after(mark: Mark, started_at: float) -> str:
    """"started 4 min after deploy web v1.2.3" (or "during", for a deploy with an end)."""
    since = started_at - mark.start
    if mark.end is not None and started_at < mark.end:
        return f"started during {mark.name}, {ago(since)} after it began"
    return f"started {ago(since)} after {mark.name}"


def ago(seconds: float) -> str:
    """A short duration for people: 40 s, 4 min, 1 h 5 min, 2 d 3 h."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    minutes = round(s / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours = round(s / 3600)
    if hours < 24:
        h, m = divmod(minutes, 60)
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(hours, 24)
    return f"{d} d {h} h" if h else f"{d} d"
