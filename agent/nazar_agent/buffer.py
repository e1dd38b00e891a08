"""The on-disk batch buffer: a bounded FIFO in a SQLite file (WAL mode).

Every encoded batch is appended here before any attempt to send it, and is
deleted only once the server accepted (or permanently rejected) it, so batches
survive an unreachable ingest API and agent restarts. The buffer is bounded by
the total size of the stored bodies; when a new batch does not fit, the oldest
batches are dropped (and counted) to make room.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from nazar_agent.wire import EncodedBatch

logger = logging.getLogger(__name__)

BUFFER_FILENAME = "buffer.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id     TEXT    NOT NULL UNIQUE,
    created_at   REAL    NOT NULL,
    sample_count INTEGER NOT NULL,
    body         BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class StoredBatch:
    seq: int
    batch_id: str
    created_at: float
    sample_count: int
    body: bytes


class BatchBuffer:
    """A bytes-bounded, oldest-first queue of encoded batches persisted in SQLite.

    Not thread-safe: use one instance from one thread (the agent's event loop).
    """

    def __init__(self, directory: Path, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.path = Path(directory) / BUFFER_FILENAME
        self.max_bytes = max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError:
            corrupt = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            logger.error(
                "buffer file is corrupt, moving it aside and starting empty",
                extra={"path": str(self.path), "moved_to": str(corrupt)},
            )
            self.path.rename(corrupt)
            for suffix in ("-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self._conn = self._open()
        self._bytes, self._count = self._conn.execute(
            "SELECT COALESCE(SUM(LENGTH(body)), 0), COUNT(*) FROM batches"
        ).fetchone()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            conn.execute("SELECT COUNT(*) FROM batches").fetchone()
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    @property
    def total_bytes(self) -> int:
        """Sum of the stored (compressed) batch bodies."""
        return int(self._bytes)

    def __len__(self) -> int:
        return int(self._count)

    @property
    def dropped_total(self) -> int:
        """Batches dropped to respect the bound, over the buffer's whole life."""
        row = self._conn.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        return int(row[0]) if row else 0

    def append(self, batch: EncodedBatch) -> int:
        """Store ``batch``, dropping the oldest batches if needed; return how many were dropped.

        A batch larger than the whole bound is itself dropped (and counted).
        """
        size = len(batch.body)
        if size > self.max_bytes:
            self._count_drops(1)
            logger.warning(
                "batch larger than the buffer bound, dropped",
                extra={"batch_id": batch.batch_id, "bytes": size, "max_bytes": self.max_bytes},
            )
            return 1
        dropped = 0
        dropped_samples = 0
        freed = 0
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            excess = self._bytes + size - self.max_bytes
            if excess > 0:
                cursor = self._conn.execute(
                    "SELECT seq, LENGTH(body), sample_count FROM batches ORDER BY seq"
                )
                victims: list[int] = []
                for seq, length, samples in cursor:
                    if freed >= excess:
                        break
                    victims.append(seq)
                    freed += length
                    dropped_samples += samples
                cursor.close()
                self._conn.executemany("DELETE FROM batches WHERE seq = ?", [(s,) for s in victims])
                dropped = len(victims)
                self._add_counter("dropped", dropped)
            self._conn.execute(
                "INSERT INTO batches (batch_id, created_at, sample_count, body) "
                "VALUES (?, ?, ?, ?)",
                (batch.batch_id, time.time(), batch.sample_count, batch.body),
            )
        self._bytes += size - freed
        self._count += 1 - dropped
        if dropped:
            logger.warning(
                "buffer full, dropped oldest batches",
                extra={
                    "dropped_batches": dropped,
                    "dropped_samples": dropped_samples,
                    "dropped_total": self.dropped_total,
                    "max_bytes": self.max_bytes,
                },
            )
        return dropped

    def oldest(self) -> StoredBatch | None:
        """The oldest stored batch, without removing it."""
        row = self._conn.execute(
            "SELECT seq, batch_id, created_at, sample_count, body FROM batches ORDER BY seq LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return StoredBatch(row[0], row[1], row[2], row[3], bytes(row[4]))

    def delete(self, seq: int) -> None:
        """Remove a batch (no-op if it was already dropped)."""
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            row = self._conn.execute(
                "SELECT LENGTH(body) FROM batches WHERE seq = ?", (seq,)
            ).fetchone()
            if row is not None:
                self._conn.execute("DELETE FROM batches WHERE seq = ?", (seq,))
        if row is not None:
            self._bytes -= row[0]
            self._count -= 1

    def close(self) -> None:
        self._conn.close()

    def _count_drops(self, count: int) -> None:
        with self._conn:
            self._add_counter("dropped", count)

    def _add_counter(self, name: str, amount: int) -> None:
        self._conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, amount),
        )
