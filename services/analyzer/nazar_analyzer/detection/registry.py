"""Detectors by name, so the algorithm can be swapped by configuration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import Detector, StateDict, state_from_bytes, state_to_bytes
from .composite import composite_from_bytes, is_composite_bytes

DetectorFactory = Callable[[dict[str, Any] | None], Detector]

_REGISTRY: dict[str, DetectorFactory] = {}

#: The detector used when none is named (the benchmarked configuration).
DEFAULT_DETECTOR = "composite"


def register_detector(name: str, factory: DetectorFactory, *, replace: bool = False) -> None:
    """Make ``factory(config_dict_or_None)`` available as ``name``."""
    if name in _REGISTRY and not replace:
        raise ValueError(f"detector {name!r} is already registered")
    _REGISTRY[name] = factory


def available_detectors() -> list[str]:
    return sorted(_REGISTRY)


def create_detector(name: str = DEFAULT_DETECTOR, config: dict[str, Any] | None = None) -> Detector:
    """A new detector of the registered type ``name`` (``config`` overrides defaults)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown detector {name!r}; available: {', '.join(available_detectors())}"
        ) from None
    return factory(config)


def detector_from_state(state: StateDict) -> Detector:
    """Rebuild a detector (of the right type) from its ``state_dict()``."""
    det = create_detector(str(state["type"]), state.get("config"))
    det.load_state(state)
    return det


def detector_to_bytes(detector: Detector) -> bytes:
    """Compact binary snapshot of a detector (no pickle)."""
    to_bytes = getattr(detector, "to_bytes", None)
    if to_bytes is not None:  # a detector with a compact form of its own
        blob: bytes = to_bytes()
        return blob
    return state_to_bytes(detector.state_dict())


def detector_from_bytes(data: bytes) -> Detector:
    if is_composite_bytes(data):
        return composite_from_bytes(data)
    return detector_from_state(state_from_bytes(data))
