"""The sample model, name rules and batch splitting (pure, no I/O)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

METRIC_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Sample:
    """One observation of one metric at one instant."""

    metric: str
    value: float
    timestamp: float
    labels: dict[str, str] = field(default_factory=dict)

    def is_valid(self) -> bool:
        """Whether the sample can go on the wire: legal names and a finite value."""
        return (
            METRIC_NAME_RE.match(self.metric) is not None
            and math.isfinite(self.value)
            and all(LABEL_NAME_RE.match(name) for name in self.labels)
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": self.value,
            "timestamp": self.timestamp,
            "labels": self.labels,
        }


def chunk(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Split ``items`` into consecutive chunks of at most ``size`` items."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    for start in range(0, len(items), size):
        yield items[start : start + size]
