"""Plain data of the notifier: alerts as notified, notifications, outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from nazar_common.schemas.wire import AlertEventV1

#: What a notification says about one alert.
ItemStatus = Literal["firing", "resolved", "flapping", "nodata"]
Kind = Literal["firing", "resolved", "flapping", "repeat", "test"]

ACTIVE_STATES = frozenset({"firing", "nodata", "flapping"})
INACTIVE_STATES = frozenset({"resolved", "normal"})


def notification_labels(event: AlertEventV1) -> dict[str, str]:
    """The labels silences, channel matches and webhook payloads see."""
    labels = dict(event.labels)
    labels.update(
        alertname=event.rule_name, rule=event.rule_name, host=event.host, severity=event.severity
    )
    if event.metric:
        labels["metric"] = event.metric
    return labels


@dataclass
class AlertItem:
    """One alert inside a notification."""

    fingerprint: str
    status: ItemStatus
    alert_id: int
    rule: str
    host: str
    severity: str
    metric: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    expected_low: float | None
    expected_high: float | None
    score: float | None
    explanation: str | None
    contributors: list[str]
    started_at: datetime
    ended_at: datetime | None

    @classmethod
    def from_event(cls, event: AlertEventV1, status: ItemStatus) -> AlertItem:
        return cls(
            fingerprint=event.fingerprint,
            status=status,
            alert_id=event.alert_id,
            rule=event.rule_name,
            host=event.host,
            severity=event.severity,
            metric=event.metric,
            labels=notification_labels(event),
            annotations=dict(event.annotations),
            value=event.value,
            expected_low=event.expected.low if event.expected else None,
            expected_high=event.expected.high if event.expected else None,
            score=event.score,
            explanation=event.explanation,
            contributors=list(event.contributors),
            started_at=event.started_at,
            ended_at=event.resolved_at if status == "resolved" else None,
        )

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["started_at"] = self.started_at.isoformat()
        out["ended_at"] = self.ended_at.isoformat() if self.ended_at else None
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> AlertItem:
        data = dict(raw)
        data["started_at"] = datetime.fromisoformat(data["started_at"])
        data["ended_at"] = datetime.fromisoformat(data["ended_at"]) if data["ended_at"] else None
        return cls(**data)


@dataclass
class Notification:
    """One message to one channel about one group of alerts."""

    channel: str
    kind: Kind
    group_key: str
    group_labels: dict[str, str]
    alerts: list[AlertItem]
    dedupe_key: str
    dashboard_url: str = ""
    id: int | None = None
    created_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> Literal["firing", "resolved"]:
        """Alertmanager-style overall status: firing while any alert is active."""
        return "firing" if any(a.status in ACTIVE_STATES for a in self.alerts) else "resolved"

    @property
    def firing(self) -> list[AlertItem]:
        return [a for a in self.alerts if a.status in ACTIVE_STATES]

    @property
    def resolved(self) -> list[AlertItem]:
        return [a for a in self.alerts if a.status == "resolved"]

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "kind": self.kind,
            "group_key": self.group_key,
            "group_labels": self.group_labels,
            "alerts": [a.to_json() for a in self.alerts],
            "dashboard_url": self.dashboard_url,
            "extra": self.extra,
        }

    @classmethod
    def from_json(
        cls, raw: dict[str, Any], *, id: int, dedupe_key: str, created_at: datetime | None = None
    ) -> Notification:
        return cls(
            channel=raw["channel"],
            kind=raw["kind"],
            group_key=raw["group_key"],
            group_labels=raw["group_labels"],
            alerts=[AlertItem.from_json(a) for a in raw["alerts"]],
            dedupe_key=dedupe_key,
            dashboard_url=raw.get("dashboard_url", ""),
            id=id,
            created_at=created_at,
            extra=raw.get("extra", {}),
        )


@dataclass(frozen=True)
class SendResult:
    """What a channel reports after an accepted delivery."""

    endpoint: str
    http_status: int | None = None
    detail: str = ""
