"""Adapter between alert rules and the streaming detectors of
:mod:`nazar_analyzer.detection`.

Rules speak in seconds (history window, minimum history, retrain period);
detectors count points. The conversion uses the series' sampling interval,
measured once from its history and then kept with the detector's state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nazar_analyzer.detection import (
    Detector,
    create_detector,
    detector_from_bytes,
    detector_to_bytes,
)
from nazar_common.errors import InvalidInputError
from nazar_common.schemas.config import AnomalyParams, BaselineParams

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Limits:
    max_points: int = 4032
    min_points: int = 16


def _points(seconds: float, interval: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, math.ceil(seconds / max(interval, 1e-3)))))


def _seasonality(kind: str, window: float) -> str:
    if kind != "auto":
        return kind
    if window >= 21 * DAY:
        return "weekly"
    if window >= 3 * DAY:
        return "daily"
    return "none"


def history_points(params: BaselineParams | AnomalyParams, interval: float, limits: Limits) -> int:
    """How many history points the detector for ``params`` learns from."""
    window = params.window if isinstance(params, BaselineParams) else params.training_window
    return _points(window, interval, limits.min_points, limits.max_points)


def detector_config(
    params: BaselineParams | AnomalyParams, interval: float, limits: Limits
) -> tuple[str, dict[str, Any]]:
    """The registry name and configuration of the detector a rule asks for."""
    hist = history_points(params, interval, limits)
    if isinstance(params, BaselineParams):
        min_hist = min(hist, _points(params.min_history, interval, 10, limits.max_points))
        return "baseline", {
            "max_history": hist,
            "min_history": min_hist,
            "mad_k": params.band,
            "direction": params.direction,
            "seasonality": _seasonality(params.seasonality, params.window),
            "alarm_window": 1,
            "alarm_fraction": 1.0,
            "refractory_s": 0.0,
            "stats_every": 4,
        }
    min_hist = min(hist, max(16, hist // 7))
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
    params: BaselineParams | AnomalyParams, interval: float, limits: Limits
) -> Detector:
    name, config = detector_config(params, interval, limits)
    try:
        return create_detector(name, config)
    except (KeyError, ValueError, TypeError) as exc:
        raise InvalidInputError(f"cannot build detector {name!r}: {exc}") from exc


def dump(detector: Detector) -> bytes:
    return detector_to_bytes(detector)


def load(blob: bytes) -> Detector:
    return detector_from_bytes(blob)
