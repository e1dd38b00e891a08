"""Parsing of query times and durations (pure functions).

Times are Unix seconds (``1700000000``, ``1700000000.5``), RFC 3339 with a
zone (``2026-01-02T03:04:05Z``), ``now``, or ``now`` minus / plus a duration
(``now-1h``). Durations are seconds (``90``, ``1.5``) or a sequence of
number-and-unit parts (``60s``, ``5m``, ``1h30m``, ``1d``, ``1w``, ``250ms``).

Every parse error is an :class:`~nazar_common.errors.InvalidInputError`
naming the parameter, so the HTTP edge answers 400 with a clear detail.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from nazar_common.errors import InvalidInputError
from nazar_common.schemas.durations import NUMBER_RE, parse_seconds

_RELATIVE_RE = re.compile(r"now\s*(?:([+-])\s*(.+))?")

#: Latest time accepted (9999-12-31); Python datetimes end there.
MAX_TIME = 253402300799.0


def parse_duration(raw: str, name: str = "duration") -> float:
    """Seconds in ``raw`` (``"90"``, ``"60s"``, ``"5m"``, ``"1h30m"``); must be > 0."""
    try:
        return parse_seconds(raw)
    except ValueError as exc:
        raise InvalidInputError(f"{name} {exc}") from None


def parse_time(raw: str, now: float, name: str = "time") -> float:
    """Unix seconds for ``raw``: Unix seconds, RFC 3339 with a zone, or ``now[-+]duration``."""
    text = raw.strip()
    if not text:
        raise InvalidInputError(f"{name} is empty; give Unix seconds or RFC 3339")
    if NUMBER_RE.fullmatch(text):
        value = float(text)
    elif (rel := _RELATIVE_RE.fullmatch(text.lower())) is not None:
        value = now
        if rel.group(1):
            offset = parse_duration(rel.group(2), name=f"{name} offset")
            value = now - offset if rel.group(1) == "-" else now + offset
    else:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInputError(
                f"{name} {raw!r} is neither Unix seconds nor an RFC 3339 time "
                "(like 2026-01-02T03:04:05Z)"
            ) from None
        if parsed.tzinfo is None:
            raise InvalidInputError(
                f"{name} {raw!r} has no time zone; add Z or an offset like +02:00"
            )
        value = parsed.timestamp()
    if not math.isfinite(value) or not 0 <= value <= MAX_TIME:
        raise InvalidInputError(f"{name} {raw!r} is out of range")
    return value


def to_datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
