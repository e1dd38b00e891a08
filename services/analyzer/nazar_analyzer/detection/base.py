"""Common types of the streaming anomaly detectors.

Every detector consumes ``(timestamp, value)`` points one at a time, in order,
and answers each with a :class:`DetectionResult`.  Detectors hold bounded state
that can be exported with ``state_dict()`` (plain Python / numpy values) and
restored with ``load_state()``; ``to_bytes()`` / ``from_bytes()`` wrap that in
a compact binary form for storage.  Nothing here does I/O.
"""

from __future__ import annotations

import io
import json
import math
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import numpy as np

#: Score at or above which a point counts as anomalous (for every detector).
ALARM_SCORE = 0.5

StateDict = dict[str, Any]


class Direction(StrEnum):
    """Which side of the expected band is anomalous."""

    ABOVE = "above"
    BELOW = "below"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class DetectionResult:
    """The verdict on one point.

    ``anomaly_score`` is in [0, 1]; it is >= 0.5 exactly when ``is_anomaly``
    (an alarm was raised for this point).  ``raw_score`` is the evidence before
    alarm gating (persistence requirement, refractory period), also in [0, 1].
    ``expected_low``/``expected_high``/``expected_centre`` describe the band the
    value was expected in (NaN while the detector is still learning).
    """

    timestamp: float
    value: float
    anomaly_score: float
    is_anomaly: bool
    expected_low: float
    expected_high: float
    expected_centre: float
    explanation: str
    raw_score: float = 0.0
    learning: bool = False


@runtime_checkable
class Detector(Protocol):
    """Interface shared by all detectors (see :mod:`.registry`)."""

    name: str

    def update(self, ts: float, value: float) -> DetectionResult:
        """Consume the next point (epoch seconds, value) and judge it."""
        ...

    def state_dict(self) -> StateDict:
        """Everything needed to continue exactly where this detector is."""
        ...

    def load_state(self, state: StateDict) -> None:
        """Restore a state produced by ``state_dict`` of the same detector type."""
        ...

    def config_dict(self) -> dict[str, Any]:
        """The detector's configuration as JSON-compatible values."""
        ...


# ---------------------------------------------------------------------------
# score helpers
# ---------------------------------------------------------------------------


def _unscored(ts: float, value: float, explanation: str) -> DetectionResult:
    """A result with no score and no band, flagged as learning."""
    nan = math.nan
    return DetectionResult(ts, value, 0.0, False, nan, nan, nan, explanation, 0.0, True)


def ignored_result(ts: float, value: float) -> DetectionResult:
    """The result for a value that is not a finite number: ignored, not learnt."""
    return _unscored(ts, value, "value is not a finite number; ignored")


def learning_result(ts: float, value: float) -> DetectionResult:
    """The result while a detector is still learning: no score, no band."""
    return _unscored(ts, value, explain(value, math.nan, math.nan, math.nan, 0.0))


class _QuarantineConfig(Protocol):
    @property
    def quarantine_score(self) -> float: ...


class TwoPhaseUpdate:
    """``update`` as ``judge`` then ``admit``: a point that scores at or above
    ``config.quarantine_score`` is held back from learning (see
    :class:`Quarantine`). An ensemble calls the two halves itself."""

    config: _QuarantineConfig

    def judge(self, ts: float, value: float) -> DetectionResult:
        raise NotImplementedError

    def admit(self, suspect: bool) -> Admission:
        raise NotImplementedError

    def update(self, ts: float, value: float) -> DetectionResult:
        result = self.judge(ts, value)
        self.admit(not result.learning and result.raw_score >= self.config.quarantine_score)
        return result


def score_from_ratio(ratio: float, steepness: float = 4.0) -> float:
    """Map ``ratio`` = distance from centre / distance from centre to band edge to [0, 1).

    Inside the band (ratio < 1) the score is below 0.5, at the edge it is 0.5
    and it tends to 1 far outside: ``r^k / (1 + r^k)``.
    """
    if not ratio > 0.0:
        return 0.0
    if ratio > 1e6:
        return 1.0
    p = ratio**steepness
    return float(p / (1.0 + p))


def fmt_value(x: float) -> str:
    """Short human form of a value for explanations."""
    if math.isnan(x):
        return "n/a"
    return f"{x:.4g}"


def explain(
    value: float, low: float, high: float, centre: float, score: float, what: str = "value"
) -> str:
    """One-line explanation: observed vs expected band, and the score."""
    if math.isnan(low) or math.isnan(high):
        return f"{what} {fmt_value(value)}: still learning the normal range"
    if value > high:
        where = "above"
    elif value < low:
        where = "below"
    else:
        where = "within"
    return (
        f"{what} {fmt_value(value)} is {where} the expected band "
        f"[{fmt_value(low)}, {fmt_value(high)}] (centre {fmt_value(centre)}); "
        f"score {score:.2f}"
    )


# ---------------------------------------------------------------------------
# alarm gating
# ---------------------------------------------------------------------------


class AlarmGate:
    """Turns a stream of raw scores into alarms.

    A point raises an alarm when its raw score is >= ``threshold``, at least
    ``min_fraction`` of the last ``window`` raw scores (this one included) are
    >= ``threshold``, and no alarm was raised in the last ``refractory_s``
    seconds (alarm suppression: one incident, one alarm).  With
    ``refractory_extends`` a suppressed alarm restarts the refractory period:
    the incident lasts as long as alarm-worthy points keep coming less than
    ``refractory_s`` apart, so a sustained anomaly raises one alarm, not one
    every ``refractory_s``.

    Optionally, sustained moderate evidence also raises an alarm (a run rule, as
    in statistical process control): the raw score is >= ``sustain_threshold``
    (below ``threshold``) for this point and for at least ``sustain_count`` of the
    last ``sustain_window`` points.  ``sustain_threshold=inf`` switches it off.
    """

    def __init__(
        self,
        threshold: float = ALARM_SCORE,
        window: int = 1,
        min_fraction: float = 1.0,
        refractory_s: float = 0.0,
        sustain_threshold: float = math.inf,
        sustain_window: int = 1,
        sustain_count: int = 1,
        refractory_extends: bool = False,
    ) -> None:
        if window < 1 or sustain_window < 1:
            raise ValueError("window and sustain_window must be >= 1")
        if not 0.0 < min_fraction <= 1.0:
            raise ValueError("min_fraction must be in (0, 1]")
        if not 1 <= sustain_count <= sustain_window:
            raise ValueError("need 1 <= sustain_count <= sustain_window")
        self.threshold = threshold
        self.window = window
        self.min_count = max(1, math.ceil(min_fraction * window - 1e-9))
        self.refractory_s = refractory_s
        self.refractory_extends = refractory_extends
        self.sustain_threshold = sustain_threshold
        self.sustain_window = sustain_window
        self.sustain_count = sustain_count
        self._recent: deque[bool] = deque(maxlen=window)
        self._hits = 0
        self._recent_sustain: deque[bool] = deque(maxlen=sustain_window)
        self._sustain_hits = 0
        self._last_alarm_ts = -math.inf

    def step(self, ts: float, raw_score: float) -> bool:
        hit = raw_score >= self.threshold
        if len(self._recent) == self.window and self._recent[0]:
            self._hits -= 1
        self._recent.append(hit)
        self._hits += int(hit)
        moderate = raw_score >= self.sustain_threshold
        if len(self._recent_sustain) == self.sustain_window and self._recent_sustain[0]:
            self._sustain_hits -= 1
        self._recent_sustain.append(moderate)
        self._sustain_hits += int(moderate)
        sustained = moderate and self._sustain_hits >= self.sustain_count
        if not sustained and (not hit or self._hits < self.min_count):
            return False
        if ts - self._last_alarm_ts < self.refractory_s:
            if self.refractory_extends:
                self._last_alarm_ts = ts
            return False
        self._last_alarm_ts = ts
        return True

    def reported_score(self, raw_score: float, alarm: bool) -> float:
        """Score to report: >= 0.5 iff alarm, otherwise capped just below 0.5."""
        if alarm:
            return max(raw_score, ALARM_SCORE)
        return min(raw_score, ALARM_SCORE - 1e-3)

    def state_dict(self) -> StateDict:
        return {
            "recent": [bool(x) for x in self._recent],
            "recent_sustain": [bool(x) for x in self._recent_sustain],
            "last_alarm_ts": self._last_alarm_ts,
        }

    def load_state(self, state: StateDict) -> None:
        self._recent = deque((bool(x) for x in state["recent"]), maxlen=self.window)
        self._hits = sum(self._recent)
        self._recent_sustain = deque(
            (bool(x) for x in state.get("recent_sustain", [])), maxlen=self.sustain_window
        )
        self._sustain_hits = sum(self._recent_sustain)
        self._last_alarm_ts = float(state["last_alarm_ts"])


# ---------------------------------------------------------------------------
# quarantine of anomalous points
# ---------------------------------------------------------------------------


class Admission(StrEnum):
    """What a detector does with the point it has just judged (see :class:`Quarantine`)."""

    ADMIT = "admit"  # no episode: learn from the point now
    HOLD = "hold"  # an episode is open: keep the point out of the learnt history
    RELEASE = "release"  # the episode is over: learn the held points and this one
    REBASELINE = "rebaseline"  # the episode persisted: learn it as the new normal


class Quarantine:
    """Keeps the points of an ongoing anomaly out of what a detector learns from.

    An *episode* opens at the first suspect point (raw score >= the detector's
    quarantine score).  While it is open, every point is held back, so the band,
    centre and spread are still those of the behaviour before it, and a sustained
    anomaly keeps being judged against them.  The episode closes

    * when ``release_after`` consecutive points were not suspect: the anomaly is
      over and the held points are learnt (a later repeat of the same excursion
      is then not news), or
    * when it has lasted ``horizon`` points: the new behaviour has persisted long
      enough to be a level shift and is learnt as the new normal (re-baselining).

    ``horizon <= 0`` switches quarantine off (every point is admitted at once).
    Only counters are kept here; the detector holds the points themselves.
    """

    def __init__(self, horizon: int, release_after: int) -> None:
        if release_after < 1:
            raise ValueError("release_after must be >= 1")
        self.horizon = horizon
        self.release_after = release_after
        self.held = 0  # points of the open episode, the latest one included
        self.calm = 0  # consecutive non-suspect points at the end of the episode

    def step(self, suspect: bool) -> Admission:
        if self.horizon <= 0 or (self.held == 0 and not suspect):
            return Admission.ADMIT
        self.held += 1
        self.calm = 0 if suspect else self.calm + 1
        if self.calm >= self.release_after:
            self.held = self.calm = 0
            return Admission.RELEASE
        if self.held >= self.horizon:
            self.held = self.calm = 0
            return Admission.REBASELINE
        return Admission.HOLD

    def state_dict(self) -> StateDict:
        return {"held": self.held, "calm": self.calm}

    def load_state(self, state: StateDict | None) -> None:
        state = state or {}
        self.held = int(state.get("held", 0))
        self.calm = int(state.get("calm", 0))


def quarantine_horizon(fraction: float, history: int, release_after: int) -> int:
    """Episode length (points) after which held points are learnt: ``fraction`` of the history."""
    if fraction <= 0.0:
        return 0
    return max(release_after + 1, math.ceil(fraction * history))


# ---------------------------------------------------------------------------
# bounded buffers
# ---------------------------------------------------------------------------


class RingBuffer:
    """Fixed-capacity float buffer; the oldest value is dropped when full."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._data = np.empty(capacity, dtype=float)
        self._next = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append(self, x: float) -> None:
        self._data[self._next] = x
        self._next = (self._next + 1) % self.capacity
        if self._size < self.capacity:
            self._size += 1

    def values(self) -> np.ndarray:
        """Contents in arbitrary order (a view; do not modify)."""
        return self._data[: self._size] if self._size < self.capacity else self._data

    def ordered(self) -> np.ndarray:
        """Contents oldest first (a copy)."""
        if self._size < self.capacity:
            return self._data[: self._size].copy()
        return np.concatenate((self._data[self._next :], self._data[: self._next]))

    def last(self, k: int) -> np.ndarray:
        """The most recent ``min(k, len)`` values, oldest first (a copy)."""
        k = min(k, self._size)
        end = self._next
        if k <= end:
            return self._data[end - k : end].copy()
        return np.concatenate((self._data[self.capacity - (k - end) :], self._data[:end]))

    def state_dict(self) -> StateDict:
        return {"capacity": self.capacity, "values": self.ordered()}

    def load_state(self, state: StateDict) -> None:
        vals = np.asarray(state["values"], dtype=float)
        self.__init__(int(state["capacity"]))  # type: ignore[misc]
        for v in vals[-self.capacity :]:
            self.append(float(v))


# ---------------------------------------------------------------------------
# state serialisation (no pickle)
# ---------------------------------------------------------------------------


def _flatten(obj: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = obj
        return {"__ndarray__": key}
    if isinstance(obj, dict):
        return {str(k): _flatten(v, prefix, arrays) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_flatten(v, prefix, arrays) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    return obj


def _unflatten(obj: Any, arrays: Any) -> Any:
    if isinstance(obj, dict):
        if "__ndarray__" in obj and len(obj) == 1:
            return np.array(arrays[obj["__ndarray__"]])
        if "__float__" in obj and len(obj) == 1:
            return float(obj["__float__"])
        return {k: _unflatten(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, arrays) for v in obj]
    return obj


def state_to_bytes(state: StateDict) -> bytes:
    """Serialise a state dict (JSON + numpy arrays) to bytes, without pickle."""
    arrays: dict[str, np.ndarray] = {}
    meta = _flatten(state, "", arrays)
    buf = io.BytesIO()
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def state_from_bytes(data: bytes) -> StateDict:
    """Inverse of :func:`state_to_bytes`."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        meta = json.loads(bytes(npz["__meta__"]).decode())
        arrays = {k: npz[k] for k in npz.files if k != "__meta__"}
    result: StateDict = _unflatten(meta, arrays)
    return result
