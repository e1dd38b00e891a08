"""Cardinality budgets: per-host and global limits on the number of series
(pure logic; the counts come from the store).

Only new series are subject to the budget; samples of existing series are
always stored. When a request brings new series, ingest counts the host's
series under a per-host lock (exact, across processes), creates those that
fit in the order the request names them, and refuses the rest: their samples
are not stored. The global limit is checked against a count refreshed by
maintenance plus the series this process created since, so several ingest
processes may together pass it by the series they create between two
refreshes.

A host at its limit stays there (series are kept), and no process can
create a series for it any more: its set of series is final. Ingest then
loads that set once and refuses the host's new series from memory, without
a database round trip, however many a sender invents.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from nazar_common.db.samples import SeriesKey

PER_HOST = "per_host"
GLOBAL = "global"
SETTING = {PER_HOST: "NAZAR_SERIES_LIMIT_PER_HOST", GLOBAL: "NAZAR_SERIES_LIMIT"}

#: Refused series remembered (so that a sender repeating them costs no lookup).
_REFUSED_LIMIT = 200_000
#: Hosts named in a rejection, at most.
MAX_NAMED_HOSTS = 10
#: Series of full hosts kept in memory, at most (beyond, lookups ask the database).
MAX_FROZEN = 500_000


@dataclass
class Rejection:
    """What one request lost to the budget."""

    samples: int = 0
    series: int = 0
    #: Series refused by limit (``per_host``, ``global``).
    by_limit: dict[str, int] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)

    @property
    def limit(self) -> str:
        """The limit that refused most."""
        return max(self.by_limit, key=lambda k: self.by_limit[k])


@dataclass
class Decision:
    admit: list[SeriesKey]
    refused: dict[SeriesKey, str]  # key -> limit
    #: Series each host will have once ``admit`` is created.
    counts: dict[str, int]


class SeriesBudget:
    def __init__(self, per_host: int, total: int) -> None:
        self.per_host = per_host  # 0: no limit
        self.total = total  # 0: no limit
        #: Series in the database, as last counted plus those created since (None: unknown).
        self.total_count: int | None = None
        self._full: set[str] = set()
        self._refused: dict[SeriesKey, str] = {}
        #: Full hosts -> their (final) series and ids.
        self._frozen: dict[str, dict[SeriesKey, int]] = {}
        self._frozen_size = 0

    @property
    def enabled(self) -> bool:
        return self.per_host > 0 or self.total > 0

    def limit_value(self, limit: str) -> int:
        return self.per_host if limit == PER_HOST else self.total

    def counted(self, total: int) -> None:
        """The database holds ``total`` series (from a fresh count)."""
        self.total_count = total

    def known_refused(self, key: SeriesKey) -> str | None:
        """The limit that refuses ``key`` without asking the database, if any:
        it was refused before (after a lookup found it did not exist) and the
        limit that refused it still holds. (A series this process does not
        know may exist, created by another process or forgotten by a cache:
        only a lookup can tell.)"""
        limit = self._refused.get(key)
        if limit == GLOBAL and not self._global_full():
            return None
        return limit

    def full(self, host: str) -> bool:
        """Whether ``host`` has reached its limit (it stays there: series are kept)."""
        return host in self._full

    def to_freeze(self) -> list[str]:
        """Full hosts whose series are not in memory yet (while there is room)."""
        if self._frozen_size >= MAX_FROZEN:
            return []
        return [h for h in self._full if h not in self._frozen]

    def freeze(self, host: str, series: Iterable[tuple[SeriesKey, int]]) -> None:
        """The final series of a full ``host``."""
        known = dict(series)
        if self._frozen_size + len(known) <= MAX_FROZEN:
            self._frozen[host] = known
            self._frozen_size += len(known)

    def frozen(self, host: str) -> Mapping[SeriesKey, int] | None:
        """The series of ``host`` if it is full and they are in memory."""
        return self._frozen.get(host)

    def _global_full(self) -> bool:
        return self.total > 0 and self.total_count is not None and self.total_count >= self.total

    def choose(self, new: Sequence[SeriesKey], host_counts: Mapping[str, int]) -> Decision:
        """Which of the ``new`` series (none exists yet; in request order) fit,
        given the hosts' current series counts."""
        counts = dict(host_counts)
        room = None
        if self.total > 0:
            room = max(0, self.total - (self.total_count or 0))
        admit: list[SeriesKey] = []
        refused: dict[SeriesKey, str] = {}
        for key in new:
            have = counts.get(key.host, 0)
            if self.per_host > 0 and have >= self.per_host:
                refused[key] = PER_HOST
            elif room is not None and room <= 0:
                refused[key] = GLOBAL
            else:
                admit.append(key)
                counts[key.host] = have + 1
                if room is not None:
                    room -= 1
        return Decision(admit, refused, counts)

    def settle(self, decision: Decision, created: int) -> None:
        """Remember the outcome: full hosts, refused keys, the new total."""
        if self.per_host > 0:
            for host, n in decision.counts.items():
                if n >= self.per_host:
                    self._full.add(host)
        if self.total_count is not None:
            self.total_count += created
        if decision.refused:
            if len(self._refused) + len(decision.refused) > _REFUSED_LIMIT:
                self._refused.clear()
            self._refused.update(decision.refused)

    def refuse(self, refused: Mapping[SeriesKey, str], samples: int, keys: Iterable[SeriesKey],
               ) -> Rejection:
        """The rejection of ``samples`` samples of the ``refused`` series."""
        by_limit: dict[str, int] = {}
        hosts: list[str] = []
        for key in keys:
            limit = refused.get(key)
            if limit is None:
                continue
            by_limit[limit] = by_limit.get(limit, 0) + 1
            if key.host not in hosts and len(hosts) < MAX_NAMED_HOSTS:
                hosts.append(key.host)
        return Rejection(samples, sum(by_limit.values()), by_limit, hosts)

    def describe(self, rejection: Rejection, accepted: int) -> str:
        """A sentence for the problem detail."""
        limit = rejection.limit
        value = self.limit_value(limit)
        if limit == PER_HOST:
            hosts = ", ".join(rejection.hosts)
            head = f"host(s) {hosts} reached the limit of {value} series per host"
        else:
            head = f"the store reached its limit of {value} series"
        return (
            f"{head} ({SETTING[limit]}): {rejection.samples} sample(s) of "
            f"{rejection.series} new series were rejected; the other {accepted} sample(s) "
            "were stored"
        )
