"""InfluxDB line protocol (v1 ``/write`` and v2 ``/api/v2/write``), as Telegraf sends it.

``measurement[,tag=value...] field=value[,field=value...] [timestamp]``

* metric = ``<measurement>.<field>`` (mapped to Nazar's name rules);
* the ``host`` tag is the host (else the ``host`` query parameter); other tags
  become labels (tag keys mapped to label names);
* floats, integers (``1i``) and unsigned integers (``1u``) are stored as
  floats; booleans are stored as 1 and 0; string fields are skipped and counted;
* timestamps are integers in the request's precision (default nanoseconds);
  a line without one gets the time of the request;
* escaping follows the line-protocol reference: ``\\,`` and ``\\ `` in
  measurements; ``\\,``, ``\\=`` and ``\\ `` in tag keys, tag values and field
  keys; ``\\"`` and ``\\\\`` inside string field values; ``\\\\`` is one
  backslash everywhere; a backslash before any other character is literal.

A line that does not parse rejects the whole request (nothing is written),
with the line numbers and reasons in the error.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from nazar_ingest.payloads.names import label_name, metric_name
from nazar_ingest.payloads.sink import SampleSink
from nazar_ingest.samples import BatchBuilder, NormalizedBatch

#: Seconds per timestamp unit, by ``precision`` parameter.
PRECISION_V2 = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
PRECISION_V1 = {"n": 1e-9, "ns": 1e-9, "u": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0,
                "m": 60.0, "h": 3600.0}

STRING_FIELD = "string_field"
_TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE = frozenset({"f", "F", "false", "False", "FALSE"})
_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INT_RE = re.compile(r"[+-]?\d+")
_UINT_RE = re.compile(r"\d+")
_MEASUREMENT_ESC = frozenset(", \\")
_KEY_ESC = frozenset(",= \\")


class LineError(ValueError):
    pass


class Line(NamedTuple):
    measurement: str
    tags: list[tuple[str, str]]
    fields: list[tuple[str, str, bool]]  # key, raw value, is a quoted string
    timestamp: str | None


def _scan(line: str, i: int, stops: str, escapable: frozenset[str]) -> tuple[str, int]:
    """Characters from ``i`` up to an unescaped stop character (unescaped)."""
    out: list[str] = []
    n = len(line)
    while i < n:
        c = line[i]
        if c == "\\" and i + 1 < n and line[i + 1] in escapable:
            out.append(line[i + 1])
            i += 2
            continue
        if c in stops:
            break
        out.append(c)
        i += 1
    return "".join(out), i


def _scan_string(line: str, i: int) -> tuple[str, int]:
    """A quoted string field value starting at ``line[i] == '"'``; returns the end after it."""
    out: list[str] = []
    i += 1
    n = len(line)
    while i < n:
        c = line[i]
        if c == "\\" and i + 1 < n and line[i + 1] in '"\\':
            out.append(line[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise LineError("unterminated string field value")


def _parse_slow(line: str) -> Line:
    n = len(line)
    measurement, i = _scan(line, 0, ", ", _MEASUREMENT_ESC)
    if not measurement:
        raise LineError("missing measurement")
    tags: list[tuple[str, str]] = []
    while i < n and line[i] == ",":
        key, i = _scan(line, i + 1, ",= ", _KEY_ESC)
        if i >= n or line[i] != "=" or not key:
            raise LineError("tag must be key=value")
        value, i = _scan(line, i + 1, ",= ", _KEY_ESC)
        if not value or (i < n and line[i] == "="):
            raise LineError(f"invalid value of tag {key!r}")
        tags.append((key, value))
    if i >= n or line[i] != " ":
        raise LineError("missing fields")
    fields: list[tuple[str, str, bool]] = []
    i += 1
    while True:
        key, i = _scan(line, i, ",= ", _KEY_ESC)
        if i >= n or line[i] != "=" or not key:
            raise LineError("field must be key=value")
        i += 1
        if i < n and line[i] == '"':
            value, i = _scan_string(line, i)
            fields.append((key, value, True))
        else:
            start = i
            while i < n and line[i] not in ", ":
                i += 1
            value = line[start:i]
            if not value:
                raise LineError(f"missing value of field {key!r}")
            fields.append((key, value, False))
        if i < n and line[i] == ",":
            i += 1
            continue
        break
    timestamp = line[i:].strip() or None
    return Line(measurement, tags, fields, timestamp)


def parse_line(line: str) -> Line:
    """One line (without newline, not blank, not a comment) into its parts."""
    if "\\" in line or '"' in line:
        return _parse_slow(line)
    parts = line.split(" ")
    if len(parts) == 1:
        raise LineError("missing fields")
    if len(parts) > 3:
        # several spaces before the timestamp are tolerated; anything else is not
        parts = [parts[0], parts[1], " ".join(parts[2:]).strip()]
        if " " in parts[2]:
            raise LineError("unexpected space (escape spaces in names with a backslash)")
    key = parts[0].split(",")
    if not key[0]:
        raise LineError("missing measurement")
    tags = []
    for tag in key[1:]:
        k, eq, v = tag.partition("=")
        if not eq or not k or not v or "=" in v:
            raise LineError("tag must be key=value")
        tags.append((k, v))
    fields = []
    for item in parts[1].split(","):
        k, eq, v = item.partition("=")
        if not eq or not k or not v:
            raise LineError("field must be key=value")
        fields.append((k, v, False))
    timestamp = parts[2] if len(parts) == 3 and parts[2] else None
    return Line(key[0], tags, fields, timestamp)


def field_value(raw: str, quoted: bool) -> float | None:
    """The numeric value of a field; None for strings; LineError if malformed."""
    if quoted:
        return None
    last = raw[-1]
    if last == "i" and _INT_RE.fullmatch(raw, 0, len(raw) - 1):
        return float(int(raw[:-1]))
    if last == "u" and _UINT_RE.fullmatch(raw, 0, len(raw) - 1):
        return float(int(raw[:-1]))
    if _FLOAT_RE.fullmatch(raw):
        return float(raw)
    if raw in _TRUE:
        return 1.0
    if raw in _FALSE:
        return 0.0
    raise LineError(f"invalid field value {raw[:50]!r}")


def parse_line_protocol(
    body: bytes,
    builder: BatchBuilder,
    *,
    unit: float,
    now: float,
    default_host: str | None = None,
    aliases: bool,
) -> tuple[NormalizedBatch, bool]:
    """Decode a line-protocol body; returns the batch and whether every line had a timestamp."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        builder.error("body", f"body is not UTF-8: {exc}")
        return builder.build(), False
    out = SampleSink(builder, aliases=aliases, lenient=False)
    names: dict[tuple[str, str], str | None] = {}
    all_timestamped = True
    for lineno, raw_line in enumerate(text.split("\n"), start=1):
        line = raw_line.strip(" \t\r")
        if not line or line[0] == "#":
            continue
        loc = f"line {lineno}"
        try:
            parsed = parse_line(line)
            values = [(k, field_value(v, q)) for k, v, q in parsed.fields]
            if parsed.timestamp is None:
                all_timestamped = False
                ts = now
            elif _INT_RE.fullmatch(parsed.timestamp):
                ts = int(parsed.timestamp) * unit
            else:
                raise LineError(f"invalid timestamp {parsed.timestamp[:30]!r}")
        except LineError as exc:
            builder.error(loc, str(exc))
            continue
        host = default_host
        labels: dict[str, str] = {}
        bad = False
        for key, value in parsed.tags:
            if key == "host":
                host = value
                continue
            name = label_name(key)
            if name is None:
                builder.error(loc, f"tag key {key[:50]!r} cannot be a label name")
                bad = True
                break
            labels[name] = value
        if bad:
            continue
        if host is None:
            builder.error(loc, "no host: add a 'host' tag or the 'host' query parameter")
            continue
        if out.host(host, loc) is None or out.labels(labels, loc, len(values)) is None:
            continue
        for field, number in values:
            if number is None:
                out.skip(STRING_FIELD)
                continue
            pair = (parsed.measurement, field)
            if pair in names:
                metric = names[pair]
            else:
                metric = names[pair] = metric_name(f"{parsed.measurement}.{field}")
            if metric is None:
                builder.error(loc, f"{parsed.measurement}.{field} is not a valid metric name")
                continue
            out.add(metric, host, labels, ts, number, loc)
    return out.build(), all_timestamped
