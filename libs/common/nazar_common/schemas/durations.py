"""Durations written for people: ``90``, ``1.5``, ``60s``, ``5m``, ``1h30m``,
``1d``, ``1w``, ``250ms`` (pure)."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

#: Seconds per duration unit.
UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
}

_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
NUMBER_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def parse_seconds(raw: str) -> float:
    """Seconds in ``raw``: a number of seconds or number-and-unit parts.

    Raises ValueError unless it is a finite positive duration; the message
    reads on after the name of what was parsed ("step is empty; ...")."""
    text = raw.strip().lower()
    if not text:
        raise ValueError("is empty; give seconds or a duration like 60s, 5m, 1h")
    if NUMBER_RE.fullmatch(text):
        seconds = float(text)
    else:
        pos = 0
        seconds = 0.0
        for match in _PART_RE.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or pos == 0:
            raise ValueError(
                f"{raw!r} is not a duration; give seconds or a duration like "
                "60s, 5m, 1h, 1d (units ms, s, m, h, d, w)"
            )
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"must be a positive duration, not {raw!r}")
    return seconds


def _seconds(value: Any) -> Any:
    return parse_seconds(value) if isinstance(value, str) else value


#: A positive number of seconds, also accepted as a duration string ("15m").
Seconds = Annotated[float, BeforeValidator(_seconds), Field(gt=0)]


def format_span(seconds: float | None, parts: int = 2, sep: str = " ") -> str:
    """A length of time for people, its largest ``parts`` units: ``3725`` →
    ``"1h 2m"``, ``45`` → ``"45s"``, None → ``"-"``."""
    if seconds is None:
        return "-"
    s = round(seconds)
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            out.append(f"{s // size}{unit}")
            s %= size
    if s or not out:
        out.append(f"{s}s")
    return sep.join(out[:parts])
