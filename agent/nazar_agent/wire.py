"""The ingest wire format: JSON batches, gzip-compressed (pure, no I/O)."""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from nazar_agent.samples import Sample, chunk

#: gzip level: metrics JSON compresses ~10x already at level 6; higher buys little.
GZIP_LEVEL = 6


@dataclass(frozen=True, slots=True)
class EncodedBatch:
    """A batch ready to send: its idempotency key and the gzip-compressed JSON body."""

    batch_id: str
    body: bytes
    sample_count: int


def build_payload(
    host: str, labels: Mapping[str, str], samples: Sequence[Sample]
) -> dict[str, Any]:
    """The JSON document of one batch, as the ingest API expects it."""
    return {
        "host": host,
        "labels": dict(labels),
        "samples": [sample.to_wire() for sample in samples],
    }


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    return gzip.compress(orjson.dumps(payload), compresslevel=GZIP_LEVEL)


def decode_body(body: bytes) -> Any:
    """Inverse of :func:`encode_payload` (used by tests and debugging tools)."""
    return orjson.loads(gzip.decompress(body))


def encode_batches(
    host: str,
    labels: Mapping[str, str],
    samples: Sequence[Sample],
    max_samples: int,
) -> list[EncodedBatch]:
    """Split one collection into batches of at most ``max_samples`` and encode each.

    Invalid samples (illegal names, NaN or infinite values) are left out. Every
    batch gets a fresh UUID that stays its Idempotency-Key for all retries.
    """
    valid = [sample for sample in samples if sample.is_valid()]
    return [
        EncodedBatch(
            batch_id=str(uuid.uuid4()),
            body=encode_payload(build_payload(host, labels, part)),
            sample_count=len(part),
        )
        for part in chunk(valid, max_samples)
    ]
