"""The common last step of every protocol decoder (pure logic).

:class:`SampleSink` sits in front of :class:`~nazar_ingest.samples.BatchBuilder`
and applies the rules that differ from the native JSON endpoint:

* a sample that cannot be stored but does not make the payload malformed (a
  NaN or Prometheus staleness marker, a timestamp outside the accepted window,
  a name that cannot be mapped, a string field) is *skipped* and counted by
  reason instead of failing the request: senders such as Prometheus retry a
  failed batch forever or drop all of it, and both are worse than dropping
  the few samples that can never be stored;
* in ``lenient`` mode (remote write, OTLP) invalid hosts and labels are
  skipped as well; otherwise (line protocol) they are errors that reject the
  request whole, like the JSON endpoint does;
* with ``aliases`` on, known foreign metrics are also stored under the Nazar
  agent's name (see :mod:`nazar_ingest.payloads.aliases`).
"""

from __future__ import annotations

import math

from nazar_common.schemas.names import HOST_PATTERN, HOST_RE, label_values_problem
from nazar_ingest.payloads.aliases import derive
from nazar_ingest.samples import BatchBuilder, NormalizedBatch, labels_text

#: Reasons a sample is skipped, as reported to the caller.
NAN = "nan"
STALE = "staleness_marker"
NOT_FINITE = "not_finite"
TOO_OLD = "too_old"
TOO_NEW = "too_new"
NO_HOST = "no_host"
BAD_NAME = "invalid_metric_name"
BAD_LABELS = "invalid_labels"
#: A new series beyond a cardinality budget (counted after decoding, see routes.protocols).
SERIES_LIMIT = "series_limit"

#: Problems kept in :attr:`SampleSink.notes`, at most.
MAX_NOTES = 5


class SampleSink:
    def __init__(self, builder: BatchBuilder, *, aliases: bool, lenient: bool) -> None:
        self.builder = builder
        self.aliases = aliases
        self.lenient = lenient
        self.oldest = builder.limits.oldest
        self.newest = builder.limits.newest
        self.skipped_total = 0
        #: The first problems that skipped samples in lenient mode, as
        #: "<where>: <why>" (for the protocols that return a message).
        self.notes: list[str] = []
        self._hosts: set[str] = set()
        # Decoders reuse one labels dict for all samples of a series; its canonical
        # text is computed once (the cache holds the dict, so an id is not reused).
        self._texts: dict[int, tuple[dict[str, str], str]] = {}

    @property
    def skipped(self) -> dict[str, int]:
        return self.builder.skipped

    def skip(self, reason: str, count: int = 1) -> None:
        if count > 0:
            self.builder.skip(reason, count)
            self.skipped_total += count

    def invalid(self, reason: str, loc: str, msg: str, count: int = 1) -> None:
        """A problem that skips in lenient mode and is an error otherwise."""
        if self.lenient:
            self.skip(reason, count)
            if len(self.notes) < MAX_NOTES:
                self.notes.append(f"{loc}: {msg}")
        else:
            self.builder.error(loc, msg)

    def host(self, host: str | None, loc: str, count: int = 1) -> str | None:
        """``host`` if valid (and registered with the batch), else None."""
        if host is not None and host in self._hosts:
            return host
        if not host:
            self.invalid(NO_HOST, loc, "no host", count)
            return None
        if not HOST_RE.match(host):
            self.invalid(NO_HOST, loc, f"host {host[:100]!r} must match {HOST_PATTERN}", count)
            return None
        self._hosts.add(host)
        self.builder.add_host(host, {})
        return host

    def labels(self, labels: dict[str, str], loc: str, count: int = 1) -> dict[str, str] | None:
        """``labels`` (names already mapped) if they can be stored, else None.

        Too many labels or too long a value skips the sample on every
        protocol; text that cannot be stored at all (a NUL character) is
        invalid (an error unless lenient)."""
        problem = label_values_problem(labels)
        if problem is None:
            return labels
        where = f"{loc}.{problem.name}" if problem.name else loc
        if problem.limit:
            self.skip(BAD_LABELS, count)
        else:
            self.invalid(BAD_LABELS, where, problem.message, count)
        return None

    def add(
        self, metric: str, host: str, labels: dict[str, str], timestamp: float, value: float,
        loc: str,
    ) -> bool:
        """Add one sample (and its aliases); False if it was skipped."""
        if not math.isfinite(value):
            self.skip(NAN if value != value else NOT_FINITE)
            return False
        if timestamp < self.oldest:
            self.skip(TOO_OLD)
            return False
        if timestamp > self.newest:
            self.skip(TOO_NEW)
            return False
        self.builder.add(metric, host, self._text(labels), timestamp, value, loc)
        if self.aliases:
            for alias, alias_labels, alias_value in derive(metric, labels, value):
                if alias != metric or alias_labels != labels:
                    self.builder.add(
                        alias, host, labels_text(alias_labels), timestamp, alias_value, loc
                    )
        return True

    def _text(self, labels: dict[str, str]) -> str:
        cached = self._texts.get(id(labels))
        if cached is None:
            cached = self._texts[id(labels)] = (labels, labels_text(labels))
        return cached[1]

    def build(self) -> NormalizedBatch:
        return self.builder.build()
