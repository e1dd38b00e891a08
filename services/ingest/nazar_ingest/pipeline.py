"""Making accepted samples durable.

Requests hand their validated batch to :class:`Accepter`, which answers only
once the batch is durable:

* normally, in PostgreSQL: batches of concurrent requests share one
  transaction (group commit) that writes the samples and one outbox row per
  analyzer partition the samples belong to (the partition of their host);
  the outbox relay publishes those rows to RabbitMQ for analysis afterwards,
  as they are, so a broker outage delays analysis but loses nothing;
* while PostgreSQL is unreachable, in RabbitMQ: the batch is published with a
  publisher confirm to the deferred queue, which ingest drains into the
  database (through this same path) when it returns;
* with both down, the request fails with a transient error (HTTP 503).

Every batch carries an idempotency key recorded in the same transaction as
its samples, so a batch replayed after an ambiguous failure is stored once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import orjson
from opentelemetry import trace
from prometheus_client import Counter, Histogram

from nazar_common.db.backends import StorageBackend
from nazar_common.db.pool import is_connection_error
from nazar_common.db.samples import (
    SeriesKey,
    SeriesResolver,
    canonical_labels,
    count_series,
    host_series_keys,
    insert_samples,
    insert_samples_epoch,
    insert_series,
    lock_host_series,
    record_request_keys,
    stored_body_hashes,
    to_datetimes,
    write_samples_with_outbox,
)
from nazar_common.errors import IdempotencyKeyReusedError, InvalidInputError, TransientError
from nazar_common.messaging.broker import Broker
from nazar_common.messaging.topology import (
    DEFERRED_EXCHANGE,
    DEFERRED_ROUTING_KEY,
    SAMPLES_EXCHANGE,
    partition_of,
    partition_routing_key,
)
from nazar_common.schemas.wire import SampleBatchV1, compress
from nazar_ingest.budget import PER_HOST, Decision, Rejection, SeriesBudget
from nazar_ingest.samples import NormalizedBatch, SeriesKeyList

log = logging.getLogger(__name__)
tracer = trace.get_tracer("nazar.ingest")

COMMITS = Counter("nazar_ingest_commits_total", "Group-commit transactions", ["outcome"])
COMMIT_SIZE = Histogram(
    "nazar_ingest_commit_samples",
    "Samples per group-commit transaction",
    buckets=(10, 100, 500, 1000, 2500, 5000, 10000, 20000, 50000),
)
COMMIT_SECONDS = Histogram(
    "nazar_ingest_commit_seconds",
    "Duration of group-commit transactions",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
SAMPLES_DURABLE = Counter("nazar_ingest_samples_durable_total", "Samples made durable", ["store"])
SERIES_CREATED = Counter("nazar_ingest_series_created_total", "Series created")
SERIES_REFUSED = Counter(
    "nazar_ingest_series_refused_total", "New series refused by a cardinality budget", ["limit"]
)
DUPLICATES = Counter("nazar_ingest_duplicate_batches_total", "Batches dropped as already stored")


#: Idempotency keys for requests that bring none: a random prefix per
#: process (renewed in a forked child) and a counter; unique like a UUID
#: without reading the system's random source for each request.
_key_prefix = uuid.uuid4().hex
_key_counter = itertools.count()


def _new_key_prefix() -> None:
    global _key_prefix
    _key_prefix = uuid.uuid4().hex


os.register_at_fork(after_in_child=_new_key_prefix)


def _generated_key() -> str:
    return f"{_key_prefix}-{next(_key_counter):x}"


@dataclass
class AcceptResult:
    accepted: int
    store: str  # "database", "broker" or "duplicate"
    #: Samples of new series beyond a cardinality budget, not stored.
    rejected: Rejection | None = None


@dataclass
class _Pending:
    batch: NormalizedBatch
    future: asyncio.Future[AcceptResult] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass
class Columns:
    """The samples of a group of batches, column by column, with series ids."""

    series_ids: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    #: host -> canonical JSON of its labels (the first batch naming a host wins).
    hosts: dict[str, str] = field(default_factory=dict)

    def add(self, batch: NormalizedBatch, series_ids: list[int]) -> None:
        self.series_ids += series_ids
        self.times += batch.times
        self.values += batch.values
        for host, labels in batch.hosts.items():
            self.hosts.setdefault(host, labels)

    def __len__(self) -> int:
        return len(self.values)


class Parts:
    """The samples of a group of batches split by analyzer partition (the
    partition of each sample's host, see
    :func:`~nazar_common.messaging.topology.partition_of`): one
    :class:`Columns` per partition, each becoming one outbox message.

    A batch of one host (an agent's push, the common case) goes whole to its
    partition; only a batch of several hosts is split sample by sample."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.columns: dict[int, Columns] = {}

    def _of(self, partition: int) -> Columns:
        columns = self.columns.get(partition)
        if columns is None:
            columns = self.columns[partition] = Columns()
        return columns

    def add(self, batch: NormalizedBatch, series_ids: list[int]) -> None:
        hosts = batch.hosts
        if len(hosts) == 1:  # every key's host is in ``hosts``
            self._of(partition_of(next(iter(hosts)), self.partitions)).add(batch, series_ids)
            return
        of_host = {h: partition_of(h, self.partitions) for h in hosts}
        of_series = [self._of(of_host[key.host]) for key in batch.keys]
        for i, sid, t, v in zip(
            batch.series_index, series_ids, batch.times, batch.values, strict=True
        ):
            columns = of_series[i]
            columns.series_ids.append(sid)
            columns.times.append(t)
            columns.values.append(v)
        for host, labels in hosts.items():
            if (part := self.columns.get(of_host[host])) is not None:
                part.hosts.setdefault(host, labels)

    def merged(self) -> Columns:
        """All the samples in one :class:`Columns` (partition by partition)."""
        if len(self.columns) == 1:
            return next(iter(self.columns.values()))
        merged = Columns()
        for columns in self.columns.values():
            merged.series_ids += columns.series_ids
            merged.times += columns.times
            merged.values += columns.values
            for host, labels in columns.hosts.items():
                merged.hosts.setdefault(host, labels)
        return merged

    def outbox(self, series: dict[int, bytes]) -> list[tuple[str, str, uuid.UUID, bytes]]:
        """One outbox row per partition, addressed to its routing key."""
        rows = []
        for partition, columns in sorted(self.columns.items()):
            if not columns:
                continue
            message_id = uuid.uuid4()
            body = columns_message(columns, series, message_id)
            rows.append((SAMPLES_EXCHANGE, partition_routing_key(partition), message_id, body))
        return rows


#: Message bodies from this size on are compressed (see ``nazar_common.schemas.wire``).
COMPRESS_FROM = 4096

#: Serialised series objects kept, at most.
_SERIES_JSON_LIMIT = 500_000


def series_json(key: SeriesKey, sid: int | None) -> bytes:
    """A series object of ``SampleBatchV1``, serialised."""
    return b'{"metric":%s,"host":%s,"labels":%s,"id":%s}' % (
        orjson.dumps(key.metric),
        orjson.dumps(key.host),
        key.labels.encode(),
        orjson.dumps(sid),
    )


def _message(
    series: bytes,
    series_index: list[int],
    times: list[float],
    values: list[float],
    hosts: dict[str, str],
    message_id: uuid.UUID,
) -> bytes:
    body = orjson.dumps(
        {
            "schema": "nazar.samples.v1",
            "id": str(message_id),
            "produced_at": datetime.now(UTC).isoformat(),
            "series": orjson.Fragment(series),
            "series_index": series_index,
            "times": times,
            "values": values,
            "hosts": {h: orjson.Fragment(text.encode()) for h, text in hosts.items()},
        }
    )
    return compress(body) if len(body) >= COMPRESS_FROM else body


def to_message(batch: NormalizedBatch, message_id: uuid.UUID) -> bytes:
    """Serialise a batch whose series ids are not known (they are resolved
    by the consumer) as a ``SampleBatchV1`` message body."""
    parts = [series_json(k, None) for k in batch.keys]
    return _message(
        b"[" + b",".join(parts) + b"]",
        batch.series_index,
        batch.times,
        batch.values,
        batch.hosts,
        message_id,
    )


def columns_message(columns: Columns, series: dict[int, bytes], message_id: uuid.UUID) -> bytes:
    """Serialise resolved samples as a ``SampleBatchV1`` message body.

    ``series`` maps each series id to its serialised series object (see
    :func:`series_json`). Built with C-level operations only (the hot
    path); consumers validate the layout with ``SampleBatchV1.from_bytes``."""
    distinct = list(dict.fromkeys(columns.series_ids))
    position = dict(zip(distinct, range(len(distinct)), strict=True))
    return _message(
        b"[" + b",".join(map(series.__getitem__, distinct)) + b"]",
        list(map(position.__getitem__, columns.series_ids)),
        columns.times,
        columns.values,
        columns.hosts,
        message_id,
    )


#: Headers of a deferred message: the request's idempotency key and body digest (hex).
IDEMPOTENCY_KEY_HEADER = "x-nazar-idempotency-key"
BODY_HASH_HEADER = "x-nazar-body-hash"


def from_message(
    message: SampleBatchV1,
    idempotency_key: str | None = None,
    body_hash: bytes | None = None,
) -> NormalizedBatch:
    """The inverse of :func:`to_message` (ids are dropped: they are re-resolved)."""
    keys = [SeriesKey(s.metric, s.host, canonical_labels(s.labels)) for s in message.series]
    hosts = {s.host: canonical_labels(message.hosts.get(s.host, {})) for s in message.series}
    return NormalizedBatch(
        keys=keys,
        series_index=list(message.series_index),
        times=list(message.times),
        values=list(message.values),
        hosts=hosts,
        idempotency_key=idempotency_key or str(message.id),
        body_hash=body_hash,
    )


def refusal(exc: Exception) -> Exception:
    """The error for a single request whose write failed with ``exc`` (not
    an outage): the database refusing its data is the request's fault
    (``400``); anything else is a bug, logged, and costs this request only."""
    if isinstance(exc, asyncpg.DataError | UnicodeError):
        log.warning(
            "the database refused a request's data",
            extra={"error": str(exc), "sqlstate": getattr(exc, "sqlstate", None)},
        )
        return InvalidInputError(
            f"the database refused this request's data: {exc}; nothing of it was stored"
        )
    log.error("group commit failed", exc_info=exc)
    return exc


#: Tells apart the accepters of one process (each writes to its own database).
_accepter_tokens = itertools.count()


class Accepter:
    """Group commit to PostgreSQL with a broker fallback (see module doc)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: Broker,
        backend: StorageBackend | None,
        *,
        use_copy: bool,
        max_samples: int,
        concurrency: int,
        overlap_samples: int | None = None,
        dependency_timeout: float,
        on_commit: Callable[[], None] = lambda: None,
        on_hosts: Callable[[dict[str, str], float], None] = lambda hosts, t: None,
        series_pool: asyncpg.Pool | None = None,
        budget: SeriesBudget | None = None,
        partitions: int = 8,
    ) -> None:
        self.pool = pool
        #: Partitions of the analyzer's sample stream (one outbox row each).
        self.partitions = partitions
        #: New series are created here, off the group commit (see :meth:`_admit`).
        self.series_pool = series_pool or pool
        self.budget = budget or SeriesBudget(0, 0)
        self.broker = broker
        self.backend = backend
        self.use_copy = use_copy
        self.max_samples = max_samples
        self.overlap_samples = min(overlap_samples or max_samples, max_samples)
        self.dependency_timeout = dependency_timeout
        self.resolver = SeriesResolver()
        #: Tells this accepter's series ids from another's (another database).
        self._token = next(_accepter_tokens)
        #: Series id -> serialised series object, for outbox messages.
        self._series: dict[int, bytes] = {}
        self._slots = self._max_slots = concurrency
        self._pending: deque[_Pending] = deque()
        self._pending_samples = 0
        #: Samples of the transactions in flight.
        self._writing_samples = 0
        #: Transactions in flight -> their samples.
        self._tasks: dict[asyncio.Task[None], int] = {}
        self._on_commit = on_commit
        self._on_hosts = on_hosts
        #: Until this monotonic time the database is presumed down.
        self._db_down_until = 0.0

    @property
    def database_presumed_down(self) -> bool:
        return time.monotonic() < self._db_down_until

    async def accept(self, batch: NormalizedBatch, *, allow_fallback: bool = True) -> AcceptResult:
        """Return once ``batch`` is durable; raise TransientError if it cannot be."""
        if batch.idempotency_key is None:
            batch.idempotency_key = _generated_key()
        # samples of new series of a full host, set aside while parsing
        refused: dict[SeriesKey, str] = dict.fromkeys(batch.over_budget, PER_HOST)
        dropped = sum(batch.over_budget.values())
        if len(batch) and not self.database_presumed_down and self._has_new_series(batch):
            try:
                kept, more = await self._admit(batch)
            except TransientError:
                if not allow_fallback or not self.database_presumed_down:
                    raise
                kept, more = batch, {}  # the budget applies when the deferred batch is stored
            refused.update(more)
            dropped += len(batch) - len(kept)
            batch = kept
        rejected = self._rejection(refused, dropped) if refused else None
        if not len(batch):
            return AcceptResult(0, "database", rejected)
        if self.database_presumed_down:
            if not allow_fallback:
                raise TransientError("database unavailable", retry_after=1)
            result = await self._fallback(batch)
        else:
            result = await self._enqueue(batch, allow_fallback)
        result.rejected = rejected
        return result

    def _rejection(self, refused: dict[SeriesKey, str], samples: int) -> Rejection:
        rejection = self.budget.refuse(refused, samples, refused)
        for limit, n in rejection.by_limit.items():
            SERIES_REFUSED.labels(limit).inc(n)
        return rejection

    async def _enqueue(self, batch: NormalizedBatch, allow_fallback: bool) -> AcceptResult:
        pending = _Pending(batch)
        self._pending.append(pending)
        self._pending_samples += len(batch)
        self._kick()
        try:
            # A cancelled request (client gone) cancels only its own future:
            # the group commit skips futures that are already done.
            return await pending.future
        except TransientError:
            if not allow_fallback:
                raise
            return await self._fallback(batch)

    def _has_new_series(self, batch: NormalizedBatch) -> bool:
        """Whether ``batch`` names a series this process has no id for (the
        common case, a request like the host's previous one, costs three checks)."""
        keys = batch.keys
        if isinstance(keys, SeriesKeyList) and keys.ids is not None and keys.ids[0] == self._token:
            return False
        return None in self.resolver.cached_many(keys)

    async def _admit(
        self, batch: NormalizedBatch
    ) -> tuple[NormalizedBatch, dict[SeriesKey, str]]:
        """Resolve the series of ``batch`` that this process does not know,
        creating new ones within the cardinality budget, before the batch
        joins a group commit: a request with many new series never delays
        the requests it would share a transaction with. Returns the batch
        without the samples of refused series, and the refused series."""
        ids = self.resolver.cached_many(batch.keys)
        unknown = list(dict.fromkeys(k for k, i in zip(batch.keys, ids, strict=True) if i is None))
        budget = self.budget
        refused: dict[SeriesKey, str] = {}
        ask = []
        for key in unknown:
            limit = budget.known_refused(key)
            if limit is not None:
                refused[key] = limit
                continue
            final = budget.frozen(key.host)
            if final is None:
                ask.append(key)
            elif key in final:
                self.resolver.remember(key, final[key])
            else:
                refused[key] = PER_HOST
        if ask:
            try:
                async with self.series_pool.acquire(timeout=self.dependency_timeout) as conn:
                    found = dict(await self.resolver.lookup(conn, ask))
                    new = [k for k in ask if k not in found]
                    if new:
                        refused.update(await self._create(conn, new))
            except (OSError, TimeoutError, asyncpg.PostgresError, UnicodeError) as exc:
                if is_connection_error(exc):
                    self._db_down_until = time.monotonic() + 1.0
                    raise TransientError(f"database unavailable: {type(exc).__name__}") from exc
                if isinstance(exc, TimeoutError):
                    # busy creating other series (a burst of new series): this
                    # request waits its turn later; the database is not down
                    raise TransientError(
                        "too many new series being created; retry", retry_after=1
                    ) from exc
                if isinstance(exc, asyncpg.DataError | UnicodeError):
                    raise refusal(exc) from exc  # this request's data: a 400
                raise
        return (batch.without(refused) if refused else batch), refused

    async def _create(self, conn: asyncpg.Connection, new: list[SeriesKey]) -> dict[SeriesKey, str]:
        """Create the ``new`` series that fit the budget; returns the refused ones."""
        budget = self.budget
        if not budget.enabled:
            created = await insert_series(conn, new)
            await self.resolver.lookup(conn, new)
            SERIES_CREATED.inc(created)
            return {}
        if budget.total > 0 and budget.total_count is None:
            budget.counted(await count_series(conn))
        full = {k: PER_HOST for k in new if budget.full(k.host)}
        new = [k for k in new if k not in full]
        if not new:
            budget.settle(Decision([], full, {}), 0)
            return full
        async with conn.transaction():
            # No WAL flush to wait for: any sample of these series is written
            # later by a group commit, whose flush covers this transaction too.
            await conn.execute("SET LOCAL synchronous_commit = off")
            counts = await lock_host_series(conn, [k.host for k in new]) if (
                budget.per_host > 0) else {}
            decision = budget.choose(new, counts)
            created = await insert_series(conn, decision.admit) if decision.admit else 0
        decision.refused.update(full)
        budget.settle(decision, created)
        if decision.admit:
            await self.resolver.lookup(conn, decision.admit)
        for host in budget.to_freeze():
            budget.freeze(host, await host_series_keys(conn, host))
        SERIES_CREATED.inc(created)
        return decision.refused

    def _kick(self) -> None:
        """Start group commits for the pending batches.

        The batches that arrive while a transaction runs form the next
        group, so groups grow with the load and each transaction carries
        many requests: concurrent inserts into the same table and index
        mostly wait for each other, so fewer, larger transactions do more.
        A further transaction, up to ``concurrency``, starts only once the
        waiting samples are at least ``overlap_samples`` and at least as
        many as those being written: enough work to overlap the commit in
        flight (its WAL flush), without splitting the load into small
        transactions. Measured in ``bench/ingest.py``: a fixed threshold
        suits one load only; this one adapts."""
        while self._pending and self._slots > 0:
            if self._slots < self._max_slots and self._pending_samples < max(
                self.overlap_samples, self._writing_samples
            ):
                return
            group: list[_Pending] = []
            size = 0
            while self._pending and (
                not group or size + len(self._pending[0].batch) <= self.max_samples
            ):
                item = self._pending.popleft()
                group.append(item)
                size += len(item.batch)
            self._pending_samples -= size
            self._writing_samples += size
            self._slots -= 1
            task = asyncio.create_task(self._commit(group))
            self._tasks[task] = size
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._writing_samples -= self._tasks.pop(task)
        self._slots += 1
        self._kick()

    async def _commit(self, group: list[_Pending]) -> None:
        """Write ``group`` and answer its requests.

        A failure that is not the database's unavailability belongs to some
        member's data (or is a bug that data triggers): the group is then
        split in halves, written again, and so on down to single requests,
        so that only the requests at fault fail and the others are stored
        (nothing of a failed attempt was committed: each is one transaction)."""
        started = time.perf_counter()
        try:
            results = await asyncio.wait_for(self._write(group), self.dependency_timeout * 2)
        except Exception as exc:
            if is_connection_error(exc) or isinstance(exc, TimeoutError | TransientError):
                self._db_down_until = time.monotonic() + 1.0
                COMMITS.labels("unavailable").inc()
                err: Exception = TransientError(f"database unavailable: {type(exc).__name__}")
            elif len(group) > 1:
                COMMITS.labels("split").inc()
                half = len(group) // 2
                await self._commit(group[:half])
                await self._commit(group[half:])
                return
            else:
                err = refusal(exc)
                COMMITS.labels("refused" if isinstance(err, InvalidInputError) else "error").inc()
            for p in group:
                if not p.future.done():
                    p.future.set_exception(err)
            return
        COMMITS.labels("ok").inc()
        COMMIT_SECONDS.observe(time.perf_counter() - started)
        for p, r in zip(group, results, strict=True):
            if p.future.done():
                continue
            if isinstance(r, Exception):
                p.future.set_exception(r)
            else:
                p.future.set_result(r)
        self._on_commit()

    async def _series_ids(self, conn: asyncpg.Connection, batch: NormalizedBatch) -> list[int]:
        """The series id of each sample of ``batch`` (creating new series)."""
        keys = batch.keys
        known = keys.ids if isinstance(keys, SeriesKeyList) else None
        if known is not None and known[0] == self._token:
            ids = known[1]
        else:
            ids = self.resolver.cached_many(keys)  # type: ignore[assignment]
            if None in ids:  # type: ignore[operator]
                ids = await self.resolver.resolve(conn, keys)
            if isinstance(keys, SeriesKeyList):
                keys.ids = (self._token, ids)
        series = self._series
        if None in map(series.get, ids):
            for key, sid in zip(batch.keys, ids, strict=True):
                if sid not in series:
                    series[sid] = series_json(key, sid)  # type: ignore[index]
        return list(map(ids.__getitem__, batch.series_index))  # type: ignore[arg-type]

    async def _write(self, group: list[_Pending]) -> list[AcceptResult | Exception]:
        if self.backend is None:
            raise TransientError("storage is not migrated yet")
        if len(self._series) > _SERIES_JSON_LIMIT:
            self._series.clear()
        with tracer.start_as_current_span("ingest.group_commit") as span:
            async with self.pool.acquire(timeout=self.dependency_timeout) as conn:
                # New series are committed on their own, before the samples.
                ids = [await self._series_ids(conn, p.batch) for p in group]
                keys = [p.batch.idempotency_key or "" for p in group]
                hashes = [p.batch.body_hash for p in group]
                if not self.use_copy and len(set(keys)) == len(keys):
                    parts = Parts(self.partitions)
                    for p, series_ids in zip(group, ids, strict=True):
                        parts.add(p.batch, series_ids)
                    columns = parts.merged()
                    if await write_samples_with_outbox(
                        conn,
                        keys,
                        columns.series_ids,
                        columns.times,
                        columns.values,
                        parts.outbox(self._series),
                        hashes,
                    ):
                        self._written(span, columns)
                        return [AcceptResult(len(p.batch), "database") for p in group]
                async with conn.transaction():
                    results, columns = await self._write_statements(
                        conn, group, ids, keys, hashes
                    )
        if columns is not None:
            self._written(span, columns)
        return results

    async def _write_statements(
        self,
        conn: asyncpg.Connection,
        group: list[_Pending],
        ids: list[list[int]],
        keys: list[str],
        hashes: list[bytes | None],
    ) -> tuple[list[AcceptResult | Exception], Columns | None]:
        """The group commit as separate statements, in the caller's
        transaction: with COPY, or when the group holds a duplicate request.

        A request whose key was stored (or comes earlier in this group) is a
        duplicate, unless both have a body digest and they differ: then the
        key was reused for another request, which is refused."""
        assert self.backend is not None
        fresh = await record_request_keys(conn, keys, hashes)
        seen = await stored_body_hashes(conn, list(set(keys) - fresh)) if (
            len(fresh) < len(keys)
        ) else {}
        parts = Parts(self.partitions)
        results: list[AcceptResult | Exception] = []
        for p, key, digest, series_ids in zip(group, keys, hashes, ids, strict=True):
            if key in fresh:
                fresh.discard(key)  # a second copy in this group is a duplicate
                seen[key] = digest
                parts.add(p.batch, series_ids)
                results.append(AcceptResult(len(p.batch), "database"))
            elif digest is not None and seen.get(key) not in (None, digest):
                results.append(
                    IdempotencyKeyReusedError(
                        "this Idempotency-Key was used for a request with another body; "
                        "nothing of this request was stored (send a new key)"
                    )
                )
            else:
                DUPLICATES.inc()
                results.append(AcceptResult(len(p.batch), "duplicate"))
        columns = parts.merged()
        if not columns:
            return results, None
        await self.backend.prepare_write(conn, datetime.fromtimestamp(min(columns.times), UTC))
        if self.use_copy:
            times = to_datetimes(columns.times)
            await insert_samples(conn, columns.series_ids, times, columns.values)
        else:
            await insert_samples_epoch(conn, columns.series_ids, columns.times, columns.values)
        await conn.executemany(
            "INSERT INTO outbox (exchange, routing_key, message_id, body) VALUES ($1, $2, $3, $4)",
            parts.outbox(self._series),
        )
        return results, columns

    def _written(self, span: trace.Span, columns: Columns) -> None:
        span.set_attribute("nazar.samples", len(columns))
        COMMIT_SIZE.observe(len(columns))
        SAMPLES_DURABLE.labels("database").inc(len(columns))
        self._on_hosts(columns.hosts, max(columns.times))

    async def _fallback(self, batch: NormalizedBatch) -> AcceptResult:
        """Make ``batch`` durable in the broker's deferred queue."""
        assert batch.idempotency_key is not None
        try:
            message_id = uuid.UUID(batch.idempotency_key)
        except ValueError:
            message_id = uuid.uuid5(uuid.NAMESPACE_URL, "nazar:" + batch.idempotency_key)
        try:
            headers = {IDEMPOTENCY_KEY_HEADER: batch.idempotency_key}
            if batch.body_hash is not None:
                headers[BODY_HASH_HEADER] = batch.body_hash.hex()
            await self.broker.publish(
                DEFERRED_EXCHANGE,
                DEFERRED_ROUTING_KEY,
                to_message(batch, message_id),
                message_id=str(message_id),
                headers=headers,
            )
        except TransientError as exc:
            raise TransientError(
                "database and broker are both unavailable; retry later", retry_after=5
            ) from exc
        SAMPLES_DURABLE.labels("broker").inc(len(batch))
        return AcceptResult(len(batch), "broker")

    async def drain(self) -> None:
        """Wait for in-flight commits (graceful shutdown)."""
        while self._tasks or self._pending:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            else:
                await asyncio.sleep(0.01)
