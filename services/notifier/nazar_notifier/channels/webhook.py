"""Generic webhooks, in the Alertmanager webhook format (version 4)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from nazar_common.schemas.config import WebhookConfig
from nazar_notifier.channels.base import endpoint_of, post_json
from nazar_notifier.model import AlertItem, Notification, SendResult
from nazar_notifier.render import dashboard_link, expected_text, fmt_number

ZERO_TIME = "0001-01-01T00:00:00Z"
MAX_ALERTS = 200


def _rfc3339(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z") if value is not None else ZERO_TIME


def _annotations(alert: AlertItem) -> dict[str, str]:
    out = dict(alert.annotations)
    if alert.value is not None:
        out.setdefault("value", fmt_number(alert.value))
    if alert.expected_low is not None or alert.expected_high is not None:
        out.setdefault("expected", expected_text(alert))
    if alert.explanation:
        out.setdefault("explanation", alert.explanation)
    if alert.contributors:
        out.setdefault("contributors", ", ".join(alert.contributors))
    if alert.status == "flapping":
        out["flapping"] = "true"
    if alert.status == "nodata":
        out["nodata"] = "true"
    return out


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def render(n: Notification) -> dict[str, Any]:
    alerts = []
    for a in n.alerts[:MAX_ALERTS]:
        alerts.append(
            {
                "status": "resolved" if a.status == "resolved" else "firing",
                "labels": a.labels,
                "annotations": _annotations(a),
                "startsAt": _rfc3339(a.started_at),
                "endsAt": _rfc3339(a.ended_at),
                "generatorURL": dashboard_link(n, a),
                "fingerprint": a.fingerprint,
            }
        )
    return {
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": max(0, len(n.alerts) - MAX_ALERTS),
        "status": n.status,
        "receiver": n.channel,
        "groupLabels": n.group_labels,
        "commonLabels": _common([a.labels for a in n.alerts]),
        "commonAnnotations": _common([_annotations(a) for a in n.alerts]),
        "externalURL": n.dashboard_url,
        "alerts": alerts,
        "nazar": {"kind": n.kind, "notificationKey": n.dedupe_key},
    }


class WebhookChannel:
    def __init__(self, config: WebhookConfig, client: httpx.AsyncClient) -> None:
        self._url = str(config.url)
        self._headers = {k: v.get_secret_value() for k, v in config.headers.items()}
        self._client = client
        self.endpoint = endpoint_of(self._url)

    async def send(self, notification: Notification) -> SendResult:
        body = orjson.dumps(render(notification))
        headers = {
            **self._headers,
            # Receivers can drop a redelivery of the same notification with this key.
            "Idempotency-Key": notification.dedupe_key,
            "X-Nazar-Notification-Key": notification.dedupe_key,
        }
        return await post_json(self._client, self._url, body, self.endpoint, headers)

