"""Silences and recurring mute windows: their stored shape and what they match.

The API validates and stores them; the notifier evaluates them. Matching is
against an alert's notification labels: the event's labels plus ``alertname``
(= ``rule``), ``rule``, ``host``, ``metric`` and ``severity``.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from functools import cached_property
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nazar_common.schemas.config import NAME_PATTERN
from nazar_common.schemas.names import LABEL_NAME_PATTERN
from nazar_common.schemas.storable import Text

MatchOp = Literal["=", "!=", "=~", "!~"]
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Matcher(BaseModel):
    """``name op value``; regular expressions are fully anchored (as in Alertmanager)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=LABEL_NAME_PATTERN)]
    op: MatchOp = "="
    value: Text

    @model_validator(mode="after")
    def _valid_regex(self) -> Matcher:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {self.value!r}: {exc}") from exc
        return self

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        return re.compile(self.value)

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = self._regex.fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """Parse ``name=value``, ``name!=value``, ``name=~re`` or ``name!~re``."""
        match = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*", text)
        if match is None:
            raise ValueError(f"not a matcher: {text!r} (use name=value, !=, =~ or !~)")
        value = match[3]
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        return cls(name=match[1], op=match[2], value=value)


def matches_all(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


class SilenceSpec(BaseModel):
    """What a client sends to create a silence."""

    model_config = ConfigDict(extra="forbid")

    matchers: list[Matcher] = Field(min_length=1)
    starts_at: datetime | None = Field(default=None, description="Default: now.")
    ends_at: datetime
    created_by: Text = Field(
        default="", max_length=200, description="Default: the API key's name."
    )
    comment: Text = Field(default="", max_length=2000)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamps need a time zone (e.g. a trailing Z)")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> SilenceSpec:
        if self.starts_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class Silence(BaseModel):
    """A stored silence."""

    id: str
    matchers: list[Matcher]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str = ""

    def active_at(self, when: datetime) -> bool:
        return self.starts_at <= when < self.ends_at

    def matches(self, labels: dict[str, str], when: datetime) -> bool:
        return self.active_at(when) and matches_all(self.matchers, labels)


def _parse_day(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= 6:
            raise ValueError("day numbers are 0 (Monday) to 6 (Sunday)")
        return value
    if not isinstance(value, str):
        raise ValueError("a day is a number, 0 (Monday) to 6 (Sunday), or a name (mon..sun)")
    key = value.strip().lower()[:3]
    if key not in DAY_NAMES:
        raise ValueError(f"unknown day {value!r}")
    return DAY_NAMES.index(key)


class MuteWindowSpec(BaseModel):
    """A recurring maintenance window, e.g. patch night every Tuesday 22:00-02:00 Europe/Paris.

    ``end`` before ``start`` means the window crosses midnight; it belongs to the
    day it starts on. An empty ``matchers`` list mutes everything."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    enabled: bool = True
    matchers: list[Matcher] = Field(default_factory=list)
    days: list[int] = Field(
        default_factory=lambda: list(range(7)),
        description="Days of week the window starts on: 0=Monday..6=Sunday or names (mon..sun).",
    )
    start: time = Field(description="Local start time, HH:MM.")
    end: time = Field(description="Local end time, HH:MM (before start: next day).")
    timezone: Text = "UTC"
    comment: Text = Field(default="", max_length=2000)

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: object) -> list[int]:
        if not isinstance(value, list) or not value:
            raise ValueError("days must be a non-empty list")
        return sorted({_parse_day(v) for v in value})

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> MuteWindowSpec:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self

    def active_at(self, when: datetime) -> bool:
        if not self.enabled:
            return False
        local = when.astimezone(ZoneInfo(self.timezone))
        for day_offset in (0, 1):
            day = (local - timedelta(days=day_offset)).date()
            if day.weekday() not in self.days:
                continue
            tz = ZoneInfo(self.timezone)
            begin = datetime.combine(day, self.start, tz)
            finish_day = day if self.end > self.start else day + timedelta(days=1)
            finish = datetime.combine(finish_day, self.end, tz)
            if begin <= local < finish:
                return True
        return False

    def matches(self, labels: dict[str, str], when: datetime) -> bool:
        return self.active_at(when) and matches_all(self.matchers, labels)
