"""Events: deploys, configuration changes, incidents — things that happened
to hosts at a time, which charts draw as markers and the analyzer relates to
alerts.

An event touches hosts by name (``hosts``), by a label selector
(``selector``: every label must be equal) or both (either matches). An event
with neither touches every host (a fleet-wide change).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from nazar_common.schemas.names import (
    HOST_PATTERN,
    LABEL_NAME_PATTERN,
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS,
)
from nazar_common.schemas.storable import check_text

#: Kinds with a meaning of their own; any other word is accepted too.
KNOWN_KINDS = ("deploy", "config", "incident")
KIND_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"
MAX_HOSTS = 1000
MAX_TEXT = 200
MAX_TITLE = 500
MAX_LINK = 2048
#: Largest event body the API reads.
MAX_EVENT_BYTES = 64 * 1024


#: Text PostgreSQL can store (no NUL, no lone surrogate): the one rule of
#: ``nazar_common.schemas.storable``.
pg_text = check_text
StoredText = AfterValidator(check_text)
Title = Annotated[str, Field(min_length=1, max_length=MAX_TITLE), StoredText]
ShortText = Annotated[str, Field(min_length=1, max_length=MAX_TEXT), StoredText]
Link = Annotated[str, Field(min_length=1, max_length=MAX_LINK), StoredText]
LabelName = Annotated[str, Field(pattern=LABEL_NAME_PATTERN)]
LabelValue = Annotated[str, Field(max_length=MAX_LABEL_VALUE_LENGTH), StoredText]
Labels = Annotated[dict[LabelName, LabelValue], Field(max_length=MAX_LABELS)]
HostName = Annotated[str, Field(pattern=HOST_PATTERN)]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a time zone (Z or an offset like +02:00)")
    return value.astimezone(UTC)


class EventIn(BaseModel):
    """What a client sends to record an event."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(
        default="deploy",
        pattern=KIND_PATTERN,
        description="deploy, config, incident, or any other lower-case word.",
    )
    title: Title | None = Field(
        default=None,
        description="Default: built from kind, service and version ('deploy web 1.2.3').",
    )
    service: ShortText | None = None
    version: ShortText | None = None
    hosts: list[HostName] = Field(
        default_factory=list, max_length=MAX_HOSTS, description="Host names touched (any of)."
    )
    selector: Labels = Field(
        default_factory=dict, description="Hosts touched: those whose labels all equal these."
    )
    start: datetime = Field(
        default_factory=lambda: datetime.now(UTC),
        description="RFC 3339 with a zone, or Unix seconds; default now.",
    )
    end: datetime | None = Field(default=None, description="For events that last (optional).")
    link: Link | None = Field(
        default=None, description="http(s) URL, e.g. the CI run."
    )
    labels: Labels = Field(default_factory=dict)

    @field_validator("start")
    @classmethod
    def _zoned_start(cls, value: datetime) -> datetime:
        return _utc(value)

    @field_validator("link")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        value = _utc(value)
        start = info.data.get("start")
        if start is not None and value < start:
            raise ValueError("end must not be before start")
        return value

    def default_title(self) -> str:
        parts = [self.kind, self.service, self.version]
        return " ".join(p for p in parts if p)


class Event(BaseModel):
    """A stored event, as the API returns it and the analyzer loads it."""

    model_config = ConfigDict(frozen=True)

    id: int
    kind: str
    title: str
    service: str | None = None
    version: str | None = None
    hosts: tuple[str, ...] = ()
    selector: dict[str, str] = Field(default_factory=dict)
    start: datetime
    end: datetime | None = None
    link: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    created_at: datetime

    @property
    def fleet_wide(self) -> bool:
        return not self.hosts and not self.selector

    def touches(self, host: str, host_labels: Mapping[str, str]) -> bool:
        """Whether this event concerns ``host`` (with its labels)."""
        if self.fleet_wide or host in self.hosts:
            return True
        return bool(self.selector) and all(
            host_labels.get(k) == v for k, v in self.selector.items()
        )

    def describe(self) -> str:
        """Short human name: ``deploy web v1.2.3`` (or the title)."""
        if self.service or self.version:
            return " ".join(p for p in (self.kind, self.service, self.version) if p)
        return self.title

    def out(self) -> dict[str, Any]:
        """The API's JSON shape."""
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "service": self.service,
            "version": self.version,
            "hosts": list(self.hosts),
            "selector": dict(self.selector),
            "start": self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "link": self.link,
            "labels": dict(self.labels),
            "created_at": self.created_at.isoformat(),
        }
