from __future__ import annotations

import os
import uuid
from pathlib import Path

from nazar_agent.buffer import BUFFER_FILENAME, BatchBuffer
from nazar_agent.wire import EncodedBatch


def make_batch(size: int = 1000, samples: int = 10) -> EncodedBatch:
    return EncodedBatch(batch_id=str(uuid.uuid4()), body=os.urandom(size), sample_count=samples)


def test_fifo_order_and_delete(tmp_path: Path) -> None:
    buffer = BatchBuffer(tmp_path, max_bytes=1_000_000)
    batches = [make_batch() for _ in range(3)]
    for batch in batches:
        assert buffer.append(batch) == 0
    assert len(buffer) == 3
    assert buffer.total_bytes == 3000
    seen = []
    while (stored := buffer.oldest()) is not None:
        seen.append(stored.batch_id)
        assert stored.body == batches[len(seen) - 1].body
        buffer.delete(stored.seq)
    assert seen == [batch.batch_id for batch in batches]
    assert len(buffer) == 0
    assert buffer.total_bytes == 0
    buffer.delete(12345)  # unknown seq: no-op
    buffer.close()


def test_bound_drops_oldest_batches(tmp_path: Path) -> None:
    buffer = BatchBuffer(tmp_path, max_bytes=10_000)
    batches = [make_batch(1000) for _ in range(10)]
    for batch in batches:
        assert buffer.append(batch) == 0
    assert buffer.total_bytes == 10_000

    newcomer = make_batch(2500)
    assert buffer.append(newcomer) == 3  # 3 x 1000 bytes freed for 2500
    assert buffer.total_bytes <= 10_000
    assert buffer.dropped_total == 3
    ids = []
    while (stored := buffer.oldest()) is not None:
        ids.append(stored.batch_id)
        buffer.delete(stored.seq)
    assert ids == [batch.batch_id for batch in batches[3:]] + [newcomer.batch_id]
    buffer.close()


def test_total_never_exceeds_bound_under_churn(tmp_path: Path) -> None:
    buffer = BatchBuffer(tmp_path, max_bytes=20_000)
    for i in range(200):
        buffer.append(make_batch(300 + (i * 37) % 900))
        assert buffer.total_bytes <= 20_000
    assert buffer.dropped_total > 0
    assert len(buffer) > 0
    buffer.close()


def test_batch_larger_than_bound_is_dropped_and_counted(tmp_path: Path) -> None:
    buffer = BatchBuffer(tmp_path, max_bytes=1000)
    kept = make_batch(500)
    buffer.append(kept)
    assert buffer.append(make_batch(5000)) == 1
    assert buffer.dropped_total == 1
    stored = buffer.oldest()
    assert stored is not None and stored.batch_id == kept.batch_id
    buffer.close()


def test_survives_reopen(tmp_path: Path) -> None:
    buffer = BatchBuffer(tmp_path, max_bytes=100_000)
    batches = [make_batch(700) for _ in range(4)]
    for batch in batches:
        buffer.append(batch)
    first = buffer.oldest()
    assert first is not None
    buffer.delete(first.seq)
    buffer.close()

    reopened = BatchBuffer(tmp_path, max_bytes=100_000)
    assert len(reopened) == 3
    assert reopened.total_bytes == 2100
    stored = reopened.oldest()
    assert stored is not None
    assert stored.batch_id == batches[1].batch_id
    assert stored.body == batches[1].body
    assert stored.sample_count == 10
    reopened.close()


def test_reopen_with_smaller_bound_trims_on_next_append(tmp_path: Path) -> None:
    buffer = BatchBuffer(tmp_path, max_bytes=100_000)
    for _ in range(10):
        buffer.append(make_batch(1000))
    buffer.close()
    smaller = BatchBuffer(tmp_path, max_bytes=3000)
    smaller.append(make_batch(1000))
    assert smaller.total_bytes <= 3000
    assert smaller.dropped_total == 8
    smaller.close()


def test_drop_counter_survives_reopen(tmp_path: Path) -> None:
    buffer = BatchBuffer(tmp_path, max_bytes=2000)
    for _ in range(5):
        buffer.append(make_batch(1000))
    assert buffer.dropped_total == 3
    buffer.close()
    assert BatchBuffer(tmp_path, max_bytes=2000).dropped_total == 3


def test_wal_mode_and_concurrent_reader(tmp_path: Path) -> None:
    writer = BatchBuffer(tmp_path, max_bytes=100_000)
    writer.append(make_batch())
    reader = BatchBuffer(tmp_path, max_bytes=100_000)
    assert len(reader) == 1
    mode = writer._conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    writer.close()
    reader.close()


def test_corrupt_file_is_moved_aside(tmp_path: Path) -> None:
    (tmp_path / BUFFER_FILENAME).write_bytes(b"this is not a sqlite database" * 100)
    buffer = BatchBuffer(tmp_path, max_bytes=100_000)
    assert len(buffer) == 0
    buffer.append(make_batch())
    assert len(buffer) == 1
    buffer.close()
    assert list(tmp_path.glob(f"{BUFFER_FILENAME}.corrupt-*"))


def test_creates_missing_directory(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "nazar-agent"
    buffer = BatchBuffer(directory, max_bytes=100_000)
    assert (directory / BUFFER_FILENAME).exists()
    buffer.close()
