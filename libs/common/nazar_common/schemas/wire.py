"""Versioned messages carried over RabbitMQ.

Every message has an ``id`` that is its idempotency key: consumers record the
ids they have handled so a redelivery changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field


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
        return cls.model_validate(orjson.loads(body))


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
        return cls.model_validate(orjson.loads(body))
