"""Streaming anomaly detection for Nazar's analyzer (pure: numpy/scipy/scikit-learn).

Typical use::

    from nazar_analyzer.detection import create_detector, detector_to_bytes

    det = create_detector("composite")         # or "isolation_forest", "ensemble", "baseline"
    for ts, value in points:                    # epoch seconds, in time order
        result = det.update(ts, value)
        if result.is_anomaly:
            print(result.explanation)
    blob = detector_to_bytes(det)               # persist; detector_from_bytes(blob) resumes

Many series of one configuration are best kept in a :class:`DetectorBank`
(see :mod:`.composite`), which updates a batch of points of many series at
once and exports each series' state as a few kilobytes.
"""

from __future__ import annotations

from typing import Any

from .base import (
    ALARM_SCORE,
    AlarmGate,
    DetectionResult,
    Detector,
    Direction,
    StateDict,
    state_from_bytes,
    state_to_bytes,
)
from .baseline import BaselineConfig, BaselineDetector
from .composite import (
    COMPONENTS,
    STATISTICS,
    BankResult,
    CompositeConfig,
    CompositeDetector,
    DetectorBank,
    composite_from_bytes,
)
from .ensemble import EnsembleConfig, EnsembleDetector
from .forest import FlatForest, ForestConfig, IsolationForestDetector
from .registry import (
    DEFAULT_DETECTOR,
    available_detectors,
    create_detector,
    detector_from_bytes,
    detector_from_state,
    detector_to_bytes,
    register_detector,
)
from .seasonal import Seasonality


def _baseline(config: dict[str, Any] | None) -> BaselineDetector:
    return BaselineDetector(BaselineConfig.from_dict(config or {}))


def _forest(config: dict[str, Any] | None) -> IsolationForestDetector:
    return IsolationForestDetector(ForestConfig.from_dict(config or {}))


def _composite(config: dict[str, Any] | None) -> CompositeDetector:
    return CompositeDetector(CompositeConfig.model_validate(config or {}))


def _ensemble(config: dict[str, Any] | None) -> EnsembleDetector:
    return EnsembleDetector(EnsembleConfig.from_dict(config or {}))


register_detector("composite", _composite)
register_detector("baseline", _baseline)
register_detector("ensemble", _ensemble)
register_detector("isolation_forest", _forest)

__all__ = [
    "ALARM_SCORE",
    "COMPONENTS",
    "DEFAULT_DETECTOR",
    "STATISTICS",
    "AlarmGate",
    "BankResult",
    "BaselineConfig",
    "BaselineDetector",
    "CompositeConfig",
    "CompositeDetector",
    "DetectionResult",
    "Detector",
    "DetectorBank",
    "Direction",
    "EnsembleConfig",
    "EnsembleDetector",
    "FlatForest",
    "ForestConfig",
    "IsolationForestDetector",
    "Seasonality",
    "StateDict",
    "available_detectors",
    "composite_from_bytes",
    "create_detector",
    "detector_from_bytes",
    "detector_from_state",
    "detector_to_bytes",
    "register_detector",
    "state_from_bytes",
    "state_to_bytes",
]
