"""Versioned messages carried over RabbitMQ.

Every message has an ``id`` that is its idempotency key: consumers record the
ids they have handled so a redelivery changes nothing.

A message body is the model's JSON, or that JSON compressed as one LZ4 frame
(:func:`compress`; a frame starts with the magic bytes ``04 22 4D 18``, JSON
with ``{``). Large sample batches are compressed: LZ4 costs the producer far
less than the broker saves storing them. ``from_bytes`` reads both.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

import lz4.frame
import orjson
from pydantic import BaseModel, ConfigDict, Field

#: Decompressed bodies larger than this are refused (a corrupt or hostile body).
MAX_BODY_BYTES = 256 * 1024 * 1024


_LZ4_MAGIC = b"\x04\x22\x4d\x18"


def compress(body: bytes) -> bytes:
    """A JSON body compressed for the wire (an LZ4 frame recording its size)."""
    return bytes(lz4.frame.compress(body, store_size=True))


def decompress(body: bytes) -> bytes:
    """The JSON of a message body, compressed or not."""
    if not body.startswith(_LZ4_MAGIC):
        return body
    size = lz4.frame.get_frame_info(body)["content_size"]
    if not size or size > MAX_BODY_BYTES:
        raise ValueError("compressed message body without a valid size")
    return bytes(lz4.frame.decompress(body))


def _now() -> datetime:
    return datetime.now(UTC)


class WireModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=False)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", by_alias=True))


class SeriesRef(BaseModel):
    """A series identity. ``id`` is absent when the database was unreachable."""

    metric: str
    host: str
    labels: dict[str, str] = Field(default_factory=dict)
    id: int | None = None


class SampleBatchV1(WireModel):
    """Accepted samples, column-oriented: sample ``i`` belongs to
    ``series[series_index[i]]`` and has ``times[i]`` (Unix seconds) and
    ``values[i]``."""

    schema_: Literal["nazar.samples.v1"] = Field(default="nazar.samples.v1", alias="schema")
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    produced_at: datetime = Field(default_factory=_now)
    series: list[SeriesRef]
    series_index: list[int]
    times: list[float]
    values: list[float]
    #: Labels of the hosts in this batch (host -> labels).
    hosts: dict[str, dict[str, str]] = Field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.values)

    @classmethod
    def from_bytes(cls, body: bytes) -> SampleBatchV1:
        # pydantic's own JSON parser: no intermediate Python objects (the
        # analyzer's hot path)
        return cls.model_validate_json(decompress(body))


AlertState = Literal["normal", "pending", "firing", "resolved", "nodata"]
Severity = Literal["info", "warning", "critical"]


class ExpectedBand(BaseModel):
    low: float | None = None
    high: float | None = None
    centre: float | None = None


class AlertEventV1(WireModel):
    """A state transition of one alert (rule x series or rule x host)."""

    schema_: Literal["nazar.alert.v1"] = Field(default="nazar.alert.v1", alias="schema")
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    alert_id: int
    fingerprint: str
    rule_id: int
    rule_name: str
    kind: str
    state: AlertState
    previous_state: AlertState
    severity: Severity
    host: str
    metric: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    value: float | None = None
    expected: ExpectedBand | None = None
    score: float | None = None
    explanation: str | None = None
    contributors: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    started_at: datetime
    resolved_at: datetime | None = None
    at: datetime = Field(default_factory=_now)

    @classmethod
    def from_bytes(cls, body: bytes) -> AlertEventV1:
        return cls.model_validate(orjson.loads(decompress(body)))
