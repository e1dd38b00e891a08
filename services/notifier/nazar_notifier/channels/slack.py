"""Slack incoming webhooks, rendered with Block Kit."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from nazar_common.schemas.config import SlackConfig
from nazar_notifier.channels.base import endpoint_of, post_json
from nazar_notifier.model import Notification, SendResult
from nazar_notifier.render import (
    SEVERITY_EMOJI,
    STATUS_EMOJI,
    alert_title,
    dashboard_link,
    expected_text,
    fmt_number,
    notification_title,
)

#: Slack allows 50 blocks per message; leave room for the header and footer.
MAX_ALERT_SECTIONS = 10


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(n: Notification, channel: str | None = None) -> dict[str, Any]:
    title = notification_title(n)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}}
    ]
    for alert in n.alerts[:MAX_ALERT_SECTIONS]:
        fields = [
            {"type": "mrkdwn", "text": f"*Severity*\n{SEVERITY_EMOJI.get(alert.severity, '')} "
                                       f"{alert.severity}"},
            {"type": "mrkdwn", "text": f"*Host*\n{_mrkdwn(alert.host)}"},
        ]
        if alert.metric:
            fields += [
                {"type": "mrkdwn", "text": f"*Metric*\n`{_mrkdwn(alert.metric)}`"},
                {"type": "mrkdwn", "text": f"*Observed vs expected*\n{fmt_number(alert.value)} "
                                           f"vs {expected_text(alert)}"},
            ]
        section: dict[str, Any] = {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"{STATUS_EMOJI.get(alert.status, '')} *{_mrkdwn(alert_title(alert))}*",
            },
            "fields": fields,
        }
        link = dashboard_link(n, alert)
        if link:
            section["accessory"] = {
                "type": "button",
                "text": {"type": "plain_text", "text": "Open in Nazar"},
                "url": link,
            }
        blocks.append(section)
        notes = []
        if alert.explanation:
            notes.append(_mrkdwn(alert.explanation))
        if alert.contributors:
            notes.append("Contributors: " + ", ".join(_mrkdwn(c) for c in alert.contributors))
        if alert.annotations.get("description"):
            notes.append(_mrkdwn(alert.annotations["description"]))
        if notes:
            text = "\n".join(notes)[:2900]
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]})
    hidden = len(n.alerts) - MAX_ALERT_SECTIONS
    if hidden > 0:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"…and {hidden} more"}]}
        )
    body: dict[str, Any] = {"text": title, "blocks": blocks}
    if channel:
        body["channel"] = channel
    return body


class SlackChannel:
    def __init__(self, config: SlackConfig, client: httpx.AsyncClient) -> None:
        self._url = config.webhook_url.get_secret_value()
        self._channel = config.channel
        self._client = client
        self.endpoint = endpoint_of(self._url)

    async def send(self, notification: Notification) -> SendResult:
        body = orjson.dumps(render(notification, self._channel))
        return await post_json(self._client, self._url, body, self.endpoint)
