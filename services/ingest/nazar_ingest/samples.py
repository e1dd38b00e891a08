"""Validation and normalisation of incoming samples (pure logic).

Every ingestion protocol turns its payload into calls of
:meth:`BatchBuilder.add`; the builder applies the same rules to all of them
and produces one column-oriented :class:`NormalizedBatch`. A request with any
invalid sample is rejected whole: nothing of it is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import orjson

from nazar_common.db.samples import SeriesKey, canonical_labels
from nazar_common.errors import InvalidInputError, PayloadTooLargeError
from nazar_common.schemas.names import (
    HOST_PATTERN,
    HOST_RE,
    LABEL_NAME_PATTERN,
    LABEL_NAME_RE,
    METRIC_NAME_PATTERN,
    METRIC_NAME_RE,
    label_values_problem,
)

#: Validation errors listed in one response, at most.
MAX_REPORTED_ERRORS = 20

#: Skip reason of a sample replaced by a later one of the same series and time.
DUPLICATE_TIMESTAMP = "duplicate_timestamp"

#: Names and label sets already validated: agents send the same ones every
#: few seconds, so validation is mostly a set lookup. Bounded; cleared when full.
_CACHE_LIMIT = 200_000
_VALID_METRICS: set[object] = set()
_VALID_LABELS: set[tuple[tuple[str, str], ...]] = set()
_LABEL_TEXT: dict[tuple[object, ...], str] = {}


def _remember(cache: set[Any], key: Any) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache.add(key)


def _label_problem(labels: dict[Any, Any]) -> tuple[str, str] | None:
    for name in labels:
        if not LABEL_NAME_RE.match(name):
            return name, f"label name must match {LABEL_NAME_PATTERN}"
    problem = label_values_problem(labels)
    return None if problem is None else (problem.name, problem.message)


def labels_text(base: dict[str, str], own: dict[str, str] | None = None) -> str:
    """Canonical JSON of ``base`` overridden by ``own`` (both already valid)."""
    key = (tuple(base.items()), tuple(own.items())) if own else (tuple(base.items()),)
    text = _LABEL_TEXT.get(key)
    if text is None:
        if len(_LABEL_TEXT) >= _CACHE_LIMIT:
            _LABEL_TEXT.clear()
        text = _LABEL_TEXT[key] = canonical_labels({**base, **own} if own else base)
    return text


@dataclass(frozen=True)
class Limits:
    max_samples: int
    oldest: float  # Unix seconds
    newest: float  # Unix seconds


@dataclass
class NormalizedBatch:
    """Validated samples of one request (or one replayed message)."""

    keys: list[SeriesKey] = field(default_factory=list)
    series_index: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    #: host -> canonical JSON of its labels, for the hosts table. Names the
    #: host of every key (the group commit sends a batch of one host whole
    #: to that host's analyzer partition, see ``pipeline.Parts``).
    hosts: dict[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    #: Samples already dropped as new series of a host at its series limit
    #: (series -> samples), see :func:`parse_json`.
    over_budget: dict[SeriesKey, int] = field(default_factory=dict)
    #: A digest of the request body, kept with a client's idempotency key so
    #: that the key reused for another body is told apart (see pipeline).
    body_hash: bytes | None = None
    #: Samples dropped because a later one had the same series and time.
    merged: int = 0

    def __len__(self) -> int:
        return len(self.values)

    def without(self, refused: Container[SeriesKey]) -> NormalizedBatch:
        """A copy without the samples of the ``refused`` series."""
        keys: list[SeriesKey] = []
        remap: list[int] = []
        for key in self.keys:
            if key in refused:
                remap.append(-1)
            else:
                remap.append(len(keys))
                keys.append(key)
        index: list[int] = []
        times: list[float] = []
        values: list[float] = []
        for i, t, v in zip(self.series_index, self.times, self.values, strict=True):
            j = remap[i]
            if j >= 0:
                index.append(j)
                times.append(t)
                values.append(v)
        left = {k.host for k in keys}
        return NormalizedBatch(
            keys, index, times, values,
            {h: text for h, text in self.hosts.items() if h in left},
            self.idempotency_key,
            body_hash=self.body_hash,
            merged=self.merged,
        )

    def merge_duplicates(self, series: list[Any] | None = None) -> int:
        """Keep only the last sample of each series and timestamp (the one
        sent last wins); returns how many were dropped. ``series`` tells the
        samples' series apart (default: ``series_index``)."""
        index, times = self.series_index, self.times
        pairs = list(zip(series if series is not None else index, times, strict=True))
        last = dict(zip(pairs, range(len(pairs)), strict=True))  # later positions win
        dropped = len(pairs) - len(last)
        if dropped:
            keep = sorted(last.values())
            values = self.values
            self.series_index = [index[i] for i in keep]
            self.times = [times[i] for i in keep]
            self.values = [values[i] for i in keep]
            self.merged += dropped
        return dropped


class BatchBuilder:
    """Collects samples, validating each; raises one error listing the problems."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.batch = NormalizedBatch()
        self._index: dict[SeriesKey, int] = {}
        self.errors: list[dict[str, str]] = []
        self.skipped: dict[str, int] = {}

    def error(self, loc: str, msg: str) -> None:
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"loc": loc, "msg": msg})
        else:
            self.errors[-1] = {"loc": "...", "msg": "more errors not shown"}

    def skip(self, reason: str, count: int = 1) -> None:
        """Count a sample dropped on purpose (e.g. an unsupported type in a protocol)."""
        self.skipped[reason] = self.skipped.get(reason, 0) + count

    def check_host(self, host: object, loc: str) -> str | None:
        if not isinstance(host, str) or not HOST_RE.match(host):
            self.error(loc, f"host must match {HOST_PATTERN}")
            return None
        return host

    def check_labels(self, labels: object, loc: str) -> dict[str, str] | None:
        if labels is None:
            return {}
        if not isinstance(labels, dict):
            self.error(loc, "labels must be an object of strings")
            return None
        if not labels:
            return labels
        key = tuple(labels.items())
        try:
            if key in _VALID_LABELS:
                return labels
        except TypeError:  # unhashable value: reported below
            pass
        problem = _label_problem(labels)
        if problem is not None:
            where, msg = problem
            self.error(f"{loc}.{where}" if where else loc, msg)
            return None
        _remember(_VALID_LABELS, key)
        return labels

    def add_host(self, host: str, labels: dict[str, str]) -> None:
        if host not in self.batch.hosts:
            self.batch.hosts[host] = canonical_labels(labels)

    def add(
        self,
        metric: object,
        host: str,
        labels_text: str,
        timestamp: float,
        value: object,
        loc: str | int,
    ) -> None:
        """Add one sample; ``labels_text`` is the canonical JSON of valid labels
        (see :func:`labels_text`). ``loc`` names the sample in errors (an int
        ``i`` means ``samples[i]``; formatted only when there is an error)."""
        if metric not in _VALID_METRICS:
            if not isinstance(metric, str) or not METRIC_NAME_RE.match(metric):
                self.error(
                    f"{_loc(loc)}.metric", f"metric name must match {METRIC_NAME_PATTERN}"
                )
                return
            _remember(_VALID_METRICS, metric)
        if value.__class__ is not float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.error(f"{_loc(loc)}.value", "value must be a number")
                return
            value = float(value)
        if not math.isfinite(value):
            self.error(f"{_loc(loc)}.value", "value must be finite (no NaN or infinity)")
            return
        if not self.limits.oldest <= timestamp <= self.limits.newest:
            self.error(
                f"{_loc(loc)}.timestamp",
                "timestamp outside the accepted window "
                f"[{_iso(self.limits.oldest)}, {_iso(self.limits.newest)}]",
            )
            return
        batch = self.batch
        if len(batch.values) >= self.limits.max_samples:
            raise PayloadTooLargeError(
                f"more than {self.limits.max_samples} samples in one request"
            )
        key = SeriesKey(metric, host, labels_text)  # type: ignore[arg-type]
        idx = self._index.get(key)
        if idx is None:
            idx = self._index[key] = len(batch.keys)
            batch.keys.append(key)
        batch.series_index.append(idx)
        batch.times.append(timestamp)
        batch.values.append(value)

    def build(self) -> NormalizedBatch:
        if self.errors:
            raise InvalidInputError(
                f"{len(self.errors)} invalid field(s); nothing was written", errors=self.errors
            )
        merged = self.batch.merge_duplicates()
        if merged:
            self.skip(DUPLICATE_TIMESTAMP, merged)
        return self.batch


def _loc(loc: str | int) -> str:
    return f"samples[{loc}]" if isinstance(loc, int) else loc


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def parse_timestamp(raw: object, now: float) -> float | None:
    """RFC 3339 text or Unix seconds; None (absent) means now. Returns None on error."""
    if raw is None:
        return now
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        ts = float(raw)
        return ts if math.isfinite(ts) else None
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            return None
        return parsed.timestamp()
    return None


def parse_json_payload(body: bytes, builder: BatchBuilder, now: float) -> NormalizedBatch:
    """The native JSON format: ``{"host", "labels", "samples": [...]}``."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidInputError("body must be a JSON object with a 'samples' array")
    unknown = set(doc) - {"host", "labels", "samples"}
    if unknown:
        raise InvalidInputError(f"unknown field(s): {', '.join(sorted(unknown))}")
    samples = doc.get("samples")
    if not isinstance(samples, list):
        raise InvalidInputError("'samples' must be an array")
    if len(samples) > builder.limits.max_samples:
        raise PayloadTooLargeError(
            f"{len(samples)} samples in one request; the limit is {builder.limits.max_samples}"
        )
    default_host = doc.get("host")
    if default_host is not None:
        default_host = builder.check_host(default_host, "host")
    default_labels = builder.check_labels(doc.get("labels"), "labels")
    if default_labels is None:
        return builder.build()
    base_text = labels_text(default_labels)
    base_items = tuple(default_labels.items())
    allowed = _SAMPLE_FIELDS
    for i, sample in enumerate(samples):
        if not isinstance(sample, dict):
            builder.error(f"samples[{i}]", "sample must be an object")
            continue
        if not sample.keys() <= allowed:
            extra = set(sample) - allowed
            builder.error(f"samples[{i}]", f"unknown field(s): {', '.join(sorted(extra))}")
            continue
        host = default_host
        own_host = sample.get("host")
        if own_host is not None:  # null means absent, as for every optional field
            host = builder.check_host(own_host, f"samples[{i}].host")
            if host is None:
                continue
        elif host is None:
            builder.error(f"samples[{i}].host", "no host: set 'host' at the top or in the sample")
            continue
        text = base_text
        own = sample.get("labels")
        if own:
            try:
                text = _LABEL_TEXT[(base_items, tuple(own.items()))]
            except (KeyError, TypeError, AttributeError):
                if builder.check_labels(own, f"samples[{i}].labels") is None:
                    continue
                text = labels_text(default_labels, own)
        raw_ts = sample.get("timestamp")
        ts = raw_ts if raw_ts.__class__ is float else parse_timestamp(raw_ts, now)
        if ts is None:
            builder.error(
                f"samples[{i}].timestamp", "timestamp must be RFC 3339 with a zone, or Unix seconds"
            )
            continue
        if host not in builder.batch.hosts:
            builder.add_host(host, default_labels)
        builder.add(sample.get("metric"), host, text, ts, sample.get("value"), i)
    return builder.build()


_SAMPLE_FIELDS = frozenset({"metric", "value", "timestamp", "labels", "host"})


class _JsonSample(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    metric: str
    value: float
    timestamp: float | str | None = None
    #: Kept as the raw JSON text: it is only a lookup key on the fast path.
    labels: msgspec.Raw = msgspec.Raw(b"")
    host: str | None = None


class _JsonPayload(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    samples: list[_JsonSample]
    host: str | None = None
    labels: msgspec.Raw = msgspec.Raw(b"")


_DECODER = msgspec.json.Decoder(_JsonPayload)


class SeriesKeyList(list[SeriesKey]):
    """The series keys of a request, one per sample, shared by the requests
    with the same series (see :class:`_KnownSeries`). ``ids`` keeps their
    series ids once resolved (series ids never change), with the token of
    the resolver (database) they belong to."""

    __slots__ = ("distinct", "ids")

    def __init__(self, keys: list[SeriesKey]) -> None:
        super().__init__(keys)
        self.ids: tuple[int, list[int]] | None = None
        #: No series twice: then no two samples can share a series and time.
        self.distinct = len(set(keys)) == len(keys)


@dataclass
class _KnownSeries:
    """What validated requests taught about one (host, labels) context."""

    host_labels: str  # canonical JSON of the request's labels
    #: (metric, raw JSON of the sample's labels) -> its series key.
    keys: dict[tuple[str, bytes], SeriesKey] = field(default_factory=dict)
    #: The last request's series, sample by sample (metrics, raw labels and
    #: keys): an agent sends the same series in the same order each time, so
    #: comparing two lists replaces a lookup per sample.
    last_metrics: list[str] = field(default_factory=list)
    last_labels: list[msgspec.Raw] = field(default_factory=list)
    last_keys: SeriesKeyList = field(default_factory=lambda: SeriesKeyList([]))


#: (host, raw JSON of the request's labels) -> what is known about it. Bounded:
#: ``_known_size`` counts contexts and series; all is forgotten at the limit.
_KNOWN: dict[tuple[str, bytes], _KnownSeries] = {}
_KNOWN_LIMIT = 500_000
#: Series learnt per context, at most: a sender inventing series (a label
#: explosion) would otherwise fill the cache, and its clearing would send
#: every agent through the general path.
_KNOWN_PER_CONTEXT = 50_000
_known_size = 0


#: The final series of a host at its series limit (see nazar_ingest.budget), if known.
FinalSeries = Callable[[str], Mapping[SeriesKey, int] | None]


def parse_json(
    body: bytes, limits: Limits, now: float, final_series: FinalSeries | None = None
) -> NormalizedBatch:
    """The native JSON format, validated with the rules of
    :func:`parse_json_payload`, which reports every problem by field.

    Agents send the same series every few seconds, so most requests take a
    fast path: a typed decode in compiled code (msgspec), then one lookup
    per sample of a series already validated in this process, and range
    checks over whole columns. A request with anything new or unusual
    (a new series, a per-sample host, text or missing timestamps, a value
    out of range) takes the general path instead, and teaches the fast path
    its series once it is valid.

    Except for a host at its series limit (``final_series`` knows its
    series): the samples of series it does not have cannot be stored, so
    they are set aside as ``over_budget`` without the general path's cost,
    which a sender inventing series (a label explosion) would otherwise
    impose on every other request."""
    try:
        doc = _DECODER.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        doc = None  # the general path explains what is wrong
    if doc is not None:
        batch = _fast(doc, limits, final_series)
        if batch is not None:
            return batch
    batch = parse_json_payload(body, BatchBuilder(limits), now)
    if doc is not None:
        _learn(doc, batch)
    return batch


def _fast(
    doc: _JsonPayload, limits: Limits, final_series: FinalSeries | None = None
) -> NormalizedBatch | None:
    if doc.host is None:
        return None
    known = _KNOWN.get((doc.host, bytes(doc.labels)))
    samples = doc.samples
    if known is None or not samples or len(samples) > limits.max_samples:
        return None
    metrics = [s.metric for s in samples]
    labels = [s.labels for s in samples]
    # Only host-less samples are learned: one with its own host never matches.
    if any([s.host for s in samples]):
        return None
    if metrics == known.last_metrics and labels == known.last_labels:
        keys = known.last_keys
    else:
        get = known.keys.get
        found = [get((m, bytes(raw))) for m, raw in zip(metrics, labels, strict=True)]
        if None in found:
            final = final_series(doc.host) if final_series is not None else None
            return None if final is None else _final(doc, known, found, final, limits)
        keys = SeriesKeyList(found)  # type: ignore[arg-type]
        known.last_metrics, known.last_keys = metrics, keys
        known.last_labels = [raw.copy() for raw in labels]  # not views of this body
    times = [s.timestamp for s in samples]
    values = [s.value for s in samples]
    if not _in_range(times, values, limits):
        return None
    batch = NormalizedBatch(
        keys=keys,
        series_index=list(range(len(keys))),
        times=times,  # type: ignore[arg-type]
        values=values,
        hosts={doc.host: known.host_labels},
    )
    if not keys.distinct:
        batch.merge_duplicates(keys)
    return batch


def _in_range(times: list[Any], values: list[float], limits: Limits) -> bool:
    """Finite values and numeric times within the accepted window (whole columns)."""
    if not values:
        return True
    try:
        # A finite sum means finite values; text or missing times raise TypeError.
        return (
            math.isfinite(math.fsum(values))
            and limits.oldest <= min(times)
            and max(times) <= limits.newest
        )
    except (TypeError, ValueError, OverflowError):
        return False


def _final(
    doc: _JsonPayload,
    known: _KnownSeries,
    found: list[SeriesKey | None],
    final: Mapping[SeriesKey, int],
    limits: Limits,
) -> NormalizedBatch | None:
    """A request of a host whose series are final: the samples of series it
    has are kept (checked as on the fast path), the others set aside as
    over budget. None (the general path) for anything unusual."""
    host = doc.host
    assert host is not None
    base: dict[str, Any] = orjson.loads(known.host_labels)
    keys: list[SeriesKey] = []
    times: list[Any] = []
    values: list[float] = []
    over: dict[SeriesKey, int] = {}
    for sample, key in zip(doc.samples, found, strict=True):
        if key is None:
            raw = bytes(sample.labels)
            try:
                own = orjson.loads(raw) if raw else {}
            except orjson.JSONDecodeError:
                return None
            if not isinstance(own, dict):
                return None
            text = canonical_labels({**base, **own}) if own else known.host_labels
            key = SeriesKey(sample.metric, host, text)
            if key not in final:
                over[key] = over.get(key, 0) + 1
                continue
        keys.append(key)
        times.append(sample.timestamp)
        values.append(sample.value)
    if not _in_range(times, values, limits):
        return None
    return NormalizedBatch(
        keys=keys,
        series_index=list(range(len(keys))),
        times=times,
        values=values,
        hosts={host: known.host_labels} if keys else {},
        over_budget=over,
    )


def _learn(doc: _JsonPayload, batch: NormalizedBatch) -> None:
    """Remember the series of a valid request for the fast path."""
    global _known_size
    if doc.host is None or len(doc.samples) != len(batch) or doc.host not in batch.hosts:
        return
    if _known_size >= _KNOWN_LIMIT:
        _KNOWN.clear()
        _known_size = 0
    known = _KNOWN.get((doc.host, bytes(doc.labels)))
    if known is None:
        known = _KNOWN[(doc.host, bytes(doc.labels))] = _KnownSeries(batch.hosts[doc.host])
        _known_size += 1
    elif len(known.keys) >= _KNOWN_PER_CONTEXT:
        return
    keys, index, before = batch.keys, batch.series_index, len(known.keys)
    for i, sample in enumerate(doc.samples):
        key = keys[index[i]]
        # Both decoders read the same sample (checked, as they are two parsers).
        if sample.host is None and key.metric == sample.metric and key.host == doc.host:
            known.keys[(sample.metric, bytes(sample.labels))] = key
    _known_size += len(known.keys) - before
