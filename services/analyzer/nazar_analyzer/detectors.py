"""Adapter between alert rules and the streaming detectors of
:mod:`nazar_analyzer.detection`.

Rules speak in seconds (history window, minimum history, retrain period);
detectors count points. The conversion uses the series' sampling interval,
measured once from its history and then kept with the detector's state.

Baseline rules and anomaly rules with ``algorithm: composite`` (the default)
use the composite detector; its series live in a :class:`BankPool`, one
:class:`~nazar_analyzer.detection.DetectorBank` per configuration, so that
the series of a rule (same sampling interval) are updated together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nazar_analyzer.detection import (
    CompositeConfig,
    CompositeDetector,
    Detector,
    DetectorBank,
    create_detector,
    detector_from_bytes,
    detector_to_bytes,
)
from nazar_analyzer.detection.composite import (
    is_composite_bytes,
    restorable,
    split_detector_bytes,
)
from nazar_common.errors import InvalidInputError
from nazar_common.schemas.config import AnomalyParams, BaselineParams

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Limits:
    max_points: int = 4032
    min_points: int = 16


#: The history-point bound of a detector that keeps no history (the composite one).
_NO_CAP = 10**9


def _points(seconds: float, interval: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, math.ceil(seconds / max(interval, 1e-3)))))


#: Components of a baseline rule: deviations of the level from the series' own
#: history (an anomaly rule uses every component).
BASELINE_COMPONENTS = ("spike", "dip", "level_up", "level_down", "drift_up", "drift_down")


class BankPool:
    """Detector banks by configuration: the series of one rule share a bank."""

    def __init__(self) -> None:
        self._banks: dict[CompositeConfig, DetectorBank] = {}

    def bank(self, config: CompositeConfig) -> DetectorBank:
        bank = self._banks.get(config)
        if bank is None:
            for key in [k for k, b in self._banks.items() if len(b) == 0]:
                del self._banks[key]  # configurations nobody uses any more
            bank = self._banks[config] = DetectorBank(config)
        return bank

    def __len__(self) -> int:
        return sum(len(b) for b in self._banks.values())


def composite_config(
    params: BaselineParams | AnomalyParams,
    interval: float,
    limits: Limits,
    relearn_for: float | None = None,
) -> dict[str, Any]:
    """Composite-detector settings of a rule (counts in points at ``interval``).

    The composite detector keeps no history, so its learning period and its
    records' half-life are the rule's seconds at any sampling interval (the
    limit on history points bounds only what is replayed to warm it up); it is
    told the interval, so that its own time constants are durations too."""
    unbounded = Limits(max_points=_NO_CAP, min_points=limits.min_points)
    hist = history_points(params, interval, unbounded)
    if isinstance(params, BaselineParams):
        needed = params.min_history if relearn_for is None else relearn_for
        return {
            "interval_s": float(interval),
            "components": BASELINE_COMPONENTS,
            "direction": params.direction,
            "seasonality": params.seasonality,
            "min_history": min(hist, _points(needed, interval, 10, unbounded.max_points)),
            "record_halflife": float(hist),
            "record_halflife_s": 0.0,  # the rule's history is the bound, in time already
            "spike_floor": params.band,
        }
    return {
        "interval_s": float(interval),
        "min_history": _anomaly_min_history(hist, interval, unbounded, relearn_for),
        "record_halflife": float(hist),
        "record_halflife_s": 0.0,
        "threshold": params.score_threshold,
        "alarm_window": min(params.recent_points, 32),
        "alarm_count": max(
            1, min(32, math.ceil(params.min_fraction * params.recent_points - 1e-9))
        ),
    }


def _anomaly_min_history(
    hist: int, interval: float, limits: Limits, relearn_for: float | None
) -> int:
    """Points an anomaly detector needs before it judges: a seventh of its
    history, or (re-learning after a deploy) ``relearn_for`` worth, at least 16."""
    needed = min(hist, max(16, hist // 7))
    if relearn_for is not None:
        needed = min(needed, _points(relearn_for, interval, 16, limits.max_points))
    return needed


def history_points(params: BaselineParams | AnomalyParams, interval: float, limits: Limits) -> int:
    """How many history points the detector for ``params`` learns from."""
    window = params.window if isinstance(params, BaselineParams) else params.training_window
    return _points(window, interval, limits.min_points, limits.max_points)


def detector_config(
    params: BaselineParams | AnomalyParams,
    interval: float,
    limits: Limits,
    relearn_for: float | None = None,
) -> tuple[str, dict[str, Any]]:
    """The registry name and configuration of the detector a rule asks for.

    With ``relearn_for`` (seconds; a detector re-learning after a deploy, see
    :mod:`nazar_analyzer.deploys`) it needs only that much history before it
    judges, and at least its minimum (10 points, 16 for anomaly rules)."""
    hist = history_points(params, interval, limits)
    if isinstance(params, BaselineParams) or params.algorithm == "composite":
        return "composite", composite_config(params, interval, limits, relearn_for)
    min_hist = _anomaly_min_history(hist, interval, limits, relearn_for)
    forest = {
        "train_window": hist,
        "min_history": min_hist,
        "retrain_every": _points(params.retrain_every, interval, 16, 1_000_000),
        "threshold": params.score_threshold,
        "alarm_window": params.recent_points,
        "alarm_fraction": params.min_fraction,
        "refractory_s": 0.0,
    }
    if params.algorithm == "isolation_forest":
        return "isolation_forest", forest
    if params.algorithm == "ensemble":
        return "ensemble", {
            "forest": forest,
            "baseline": {"max_history": hist, "min_history": max(10, min_hist)},
            "threshold": params.score_threshold,
            "alarm_window": params.recent_points,
            "alarm_fraction": params.min_fraction,
            "refractory_s": 0.0,
        }
    return params.algorithm, {}


def new_detector(
    params: BaselineParams | AnomalyParams,
    interval: float,
    limits: Limits,
    pool: BankPool | None = None,
    relearn_for: float | None = None,
) -> Detector:
    """A detector for one series; a composite one joins ``pool``'s bank if given."""
    name, config = detector_config(params, interval, limits, relearn_for)
    try:
        if name == "composite" and pool is not None:
            return CompositeDetector.in_bank(pool.bank(CompositeConfig.model_validate(config)))
        return create_detector(name, config)
    except (KeyError, ValueError, TypeError) as exc:
        raise InvalidInputError(f"cannot build detector {name!r}: {exc}") from exc


def dump(detector: Detector) -> bytes:
    return detector_to_bytes(detector)


def loadable(blob: bytes) -> bool:
    """Whether a stored snapshot can be restored by this version; a composite
    detector's snapshot of another version cannot (it is rebuilt from history)."""
    return restorable(blob) if is_composite_bytes(blob) else True


def load(blob: bytes, pool: BankPool | None = None, interval: float | None = None) -> Detector:
    """A detector from :func:`dump`; a composite one joins ``pool``'s bank if given.

    A composite detector stored before detectors were told their series'
    ``interval`` is told it now: its state is the same, its time constants
    become durations from here on."""
    parts = split_detector_bytes(blob) if pool is not None else None
    if parts is not None and pool is not None:
        config, state = parts
        if config.interval_s == 0 and interval is not None and interval > 0:
            config = config.model_copy(update={"interval_s": float(interval)})
        return CompositeDetector.in_bank(pool.bank(config), state)
    return detector_from_bytes(blob)
