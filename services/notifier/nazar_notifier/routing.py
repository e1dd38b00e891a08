"""Which channels receive an alert event, and into which group."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from nazar_common.schemas.config import ChannelSpec
from nazar_common.schemas.wire import AlertEventV1
from nazar_notifier.model import notification_labels

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class Route:
    channel: ChannelSpec
    group_key: str
    group_labels: dict[str, str]


def channel_matches(spec: ChannelSpec, event: AlertEventV1) -> bool:
    """Does the channel's ``match`` block select this alert (beyond the rule's own list)?"""
    if spec.match is None:
        return False
    if SEVERITY_RANK[event.severity] < SEVERITY_RANK[spec.match.min_severity]:
        return False
    labels = notification_labels(event)
    return all(labels.get(k) == v for k, v in spec.match.labels.items())


def group_labels_for(event: AlertEventV1, group_by: list[str]) -> dict[str, str]:
    labels = notification_labels(event)
    return {name: labels.get(name, "") for name in group_by}


def group_key_for(channel: str, group_labels: dict[str, str]) -> str:
    """A stable key: the channel and the group-by values (hashed when long)."""
    body = ",".join(f'{k}="{v}"' for k, v in sorted(group_labels.items()))
    key = f"{channel}:{{{body}}}"
    if len(key) > 400:
        key = f"{channel}:{hashlib.sha256(body.encode()).hexdigest()}"
    return key


def route(
    event: AlertEventV1, channels: dict[str, ChannelSpec], only: str | None = None
) -> tuple[list[Route], list[str]]:
    """The routes of ``event`` and the names it asked for that do not exist.

    A rule names its channels (``event.channels``); channels with a ``match``
    block also receive other alerts that match. ``only`` restricts delivery to
    one channel (replays of a failed notification)."""
    wanted: list[str] = []
    unknown: list[str] = []
    for name in event.channels:
        if name in channels:
            wanted.append(name)
        else:
            unknown.append(name)
    for name, spec in channels.items():
        if name not in wanted and channel_matches(spec, event):
            wanted.append(name)
    routes = []
    for name in wanted:
        spec = channels[name]
        if not spec.enabled or (only is not None and name != only):
            continue
        labels = group_labels_for(event, spec.group_by)
        routes.append(Route(spec, group_key_for(name, labels), labels))
    return routes, unknown
