"""Channel implementations, one module each, built from a :class:`ChannelSpec`."""

from __future__ import annotations

import httpx

from nazar_common.errors import PermanentError
from nazar_common.schemas.config import ChannelSpec, EmailConfig, SlackConfig, WebhookConfig
from nazar_notifier.channels.base import Channel
from nazar_notifier.channels.email import EmailChannel
from nazar_notifier.channels.slack import SlackChannel
from nazar_notifier.channels.webhook import WebhookChannel


def build_channel(
    spec: ChannelSpec, client: httpx.AsyncClient, *, timeout: float, smtp_ca_file: str = ""
) -> Channel:
    config = spec.config
    if isinstance(config, SlackConfig):
        return SlackChannel(config, client)
    if isinstance(config, WebhookConfig):
        return WebhookChannel(config, client)
    if isinstance(config, EmailConfig):
        return EmailChannel(config, timeout, smtp_ca_file)
    raise PermanentError(f"unsupported channel type {type(config).__name__}")


__all__ = ["Channel", "build_channel"]
