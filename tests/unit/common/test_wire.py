"""Message bodies: JSON, or JSON compressed as an LZ4 frame."""

import lz4.frame
import pytest

from nazar_common.schemas.wire import SampleBatchV1, SeriesRef, compress, decompress


def batch() -> SampleBatchV1:
    return SampleBatchV1(
        series=[SeriesRef(metric="cpu.usage_percent", host="web-1", labels={"cpu": "0"}, id=7)],
        series_index=[0, 0],
        times=[1_800_000_000.0, 1_800_000_010.5],
        values=[1.0, 2.5],
        hosts={"web-1": {"env": "prod"}},
    )


def test_plain_and_compressed_bodies_read_the_same() -> None:
    original = batch()
    plain = original.to_bytes()
    packed = compress(plain)
    assert packed[:4] == b"\x04\x22\x4d\x18"
    assert decompress(packed) == plain
    assert decompress(plain) is plain
    assert SampleBatchV1.from_bytes(packed) == SampleBatchV1.from_bytes(plain) == original


def test_a_frame_without_its_size_is_refused() -> None:
    unsized = lz4.frame.compress(batch().to_bytes(), store_size=False)
    with pytest.raises(ValueError, match="size"):
        decompress(unsized)

