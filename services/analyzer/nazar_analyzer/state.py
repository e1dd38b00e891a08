"""What an analyzer replica holds in memory per owned partition (pure).

A partition's state is the alert state machine of every (rule, subject) of
its hosts, and the subjects themselves; it lives in the owning replica and is
checkpointed in batches (see :mod:`nazar_analyzer.service`). Detectors live
beside it in the engine, keyed by (rule, series).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nazar_analyzer.machine import Status

#: Two times closer than this are the same sample time (timestamptz has
#: microsecond resolution; messages carry floats).
EPS = 1e-6

StateKey = tuple[int, str]  # (rule id, subject key)


@dataclass(frozen=True, slots=True)
class Subject:
    """What an alert is about: a series, or a host (host absence rules)."""

    key: str
    host: str
    series_id: int | None = None
    metric: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    host_labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    rule_version: int
    detector: str
    interval: float
    last_ts: float | None
    points: int
    state: bytes
    origin: float | None = None


@dataclass
class PartitionState:
    """The in-memory state of one owned partition."""

    part: int
    epoch: int = 0
    states: dict[StateKey, Status] = field(default_factory=dict)
    subjects: dict[str, Subject] = field(default_factory=dict)
    #: States changed since the last checkpoint, and states to delete.
    dirty: set[StateKey] = field(default_factory=set)
    deleted: set[StateKey] = field(default_factory=set)
    #: Detectors (rule id, series id) of this partition.
    detectors: set[tuple[int, int]] = field(default_factory=set)
    #: Some detector of the partition learnt since the last model snapshot.
    models_dirty: bool = False
    samples_since_checkpoint: int = 0
    last_sweep: float = 0.0

    def status(self, rule_id: int, subject: Subject) -> Status:
        key = (rule_id, subject.key)
        status = self.states.get(key)
        if status is None:
            status = self.states[key] = Status()
            self.deleted.discard(key)
        self.subjects[subject.key] = subject
        return status

    def touch(self, keys: list[StateKey] | set[StateKey]) -> None:
        self.dirty.update(keys)

    def remove(self, keys: list[StateKey]) -> None:
        for key in keys:
            self.states.pop(key, None)
            self.dirty.discard(key)
            self.deleted.add(key)
