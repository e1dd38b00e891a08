"""Alert events in, messages out: Slack, webhook and e-mail against real receivers."""

from __future__ import annotations

import asyncio
import email
import email.policy
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.conftest import free_port
from tests.integration.notifier.support import (
    InProcessNotifier,
    Publisher,
    Receiver,
    add_channel,
    fetch,
    make_event,
    slack_spec,
    wait_until,
    webhook_spec,
)


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content,
                                                      policy=email.policy.default))
        return "250 OK"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                   auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login, auth_data.password) == (b"alerts", b"smtp-secret-456")
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=_authenticator,
                            auth_require_tls=False, auth_required=True)
    controller.start()
    yield box, port
    controller.stop()


async def test_firing_then_resolved_on_every_channel_type(
    db: str, fresh_amqp_url: str, slack: Receiver, hook: Receiver, smtp: tuple[Mailbox, int]
) -> None:
    box, smtp_port = smtp
    await add_channel(db, slack_spec("ops-slack", slack.url + "/services/T0/B0/slack-secret"))
    await add_channel(db, webhook_spec("ops-hook", hook.url + "/alerts"))
    await add_channel(db, {
        "name": "ops-mail", "group_wait": 0, "group_interval": 0.5,
        "config": {"type": "email", "to": ["oncall@example.com"], "from": "nazar@example.com",
                   "smtp_host": "127.0.0.1", "smtp_port": smtp_port, "security": "none",
                   "username": "alerts", "password": "smtp-secret-456"},
    })
    notifier = await InProcessNotifier(db, fresh_amqp_url,
                                       dashboard_url="https://nazar.example.com").start()
    try:
        async with Publisher(fresh_amqp_url) as pub:
            firing = make_event(channels=["ops-slack", "ops-hook", "ops-mail"])
            await pub.publish(firing)
            await wait_until(lambda: len(slack.requests) == 1 and len(hook.requests) == 1
                             and len(box.messages) == 1, what="firing messages")

            blocks = slack.requests[0].body["blocks"]
            text = str(blocks)
            assert slack.requests[0].path == "/services/T0/B0/slack-secret"
            assert blocks[0]["type"] == "header" and "FIRING" in blocks[0]["text"]["text"]
            assert "web-1" in text and "cpu.usage" in text and "97.5 vs ≤ 90" in text
            assert "cpu.usage 97.5 &gt; 90" in text  # Slack mrkdwn escaping
            assert "https://nazar.example.com/#/alerts/1" in text

            payload = hook.requests[0].body
            assert payload["version"] == "4" and payload["status"] == "firing"
            assert payload["receiver"] == "ops-hook"
            assert payload["groupLabels"] == {"rule": "cpu-high", "host": "web-1"}
            assert payload["commonLabels"]["alertname"] == "cpu-high"
            assert payload["truncatedAlerts"] == 0
            (alert,) = payload["alerts"]
            assert alert["status"] == "firing" and alert["fingerprint"] == "fp-1"
            assert alert["endsAt"] == "0001-01-01T00:00:00Z"
            assert alert["labels"]["host"] == "web-1" and alert["labels"]["env"] == "prod"
            assert set(alert) == {"status", "labels", "annotations", "startsAt", "endsAt",
                                  "generatorURL", "fingerprint"}
            assert hook.requests[0].headers["authorization"] == "Bearer hook-secret-123"
            assert hook.requests[0].headers["idempotency-key"]

            mail = box.messages[0]
            assert "FIRING" in mail["Subject"] and mail["To"] == "oncall@example.com"
            kinds = {part.get_content_type() for part in mail.walk()}
            assert {"text/plain", "text/html"} <= kinds
            assert "web-1" in mail.get_body(("plain",)).get_content()

            # A redelivery of the same event (same id) changes nothing.
            await pub.publish(firing)
            await asyncio.sleep(1.5)
            assert len(slack.requests) == 1 and len(hook.requests) == 1
            assert len(box.messages) == 1

            await pub.publish(make_event(state="resolved", previous="firing",
                                         channels=["ops-slack", "ops-hook", "ops-mail"],
                                         started_at=firing.started_at))
            await wait_until(lambda: len(slack.requests) == 2 and len(hook.requests) == 2
                             and len(box.messages) == 2, what="resolved messages")
            assert "RESOLVED" in slack.requests[1].body["blocks"][0]["text"]["text"]
            assert hook.requests[1].body["status"] == "resolved"
            assert hook.requests[1].body["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
            assert "RESOLVED" in box.messages[1]["Subject"]
            await asyncio.sleep(1.0)
            assert len(slack.requests) == 2 and len(hook.requests) == 2

        rows = await fetch(db, "SELECT channel, status, endpoint, error FROM deliveries")
        assert sorted((r["channel"], r["status"]) for r in rows) == sorted(
            [(c, "sent") for c in ("ops-slack", "ops-hook", "ops-mail")] * 2)
        for r in rows:
            assert "slack-secret" not in r["endpoint"] and "/services" not in r["endpoint"]
        events = await fetch(db, "SELECT count(*) AS n FROM notifier_events")
        assert events[0]["n"] == 2
    finally:
        await notifier.stop()


async def test_alerts_of_one_group_share_a_message(
    db: str, fresh_amqp_url: str, slack: Receiver
) -> None:
    await add_channel(db, slack_spec("team", slack.url, group_by=["rule"], group_wait=1.0))
    notifier = await InProcessNotifier(db, fresh_amqp_url).start()
    try:
        async with Publisher(fresh_amqp_url) as pub:
            for i in range(3):
                await pub.publish(make_event(fingerprint=f"fp-{i}", host=f"web-{i}",
                                             channels=["team"]))
            await wait_until(lambda: len(slack.requests) >= 1, what="grouped message")
            await asyncio.sleep(1.0)
        assert len(slack.requests) == 1
        body = slack.requests[0].body
        assert "FIRING:3" in body["text"]
        assert all(f"web-{i}" in str(body["blocks"]) for i in range(3))
    finally:
        await notifier.stop()


async def test_channel_match_by_labels_and_severity(
    db: str, fresh_amqp_url: str, slack: Receiver, hook: Receiver
) -> None:
    await add_channel(db, slack_spec("critical-prod", slack.url,
                                     match={"labels": {"env": "prod"},
                                            "min_severity": "critical"}))
    await add_channel(db, webhook_spec("named", hook.url))
    notifier = await InProcessNotifier(db, fresh_amqp_url).start()
    try:
        async with Publisher(fresh_amqp_url) as pub:
            await pub.publish(make_event(fingerprint="a", severity="warning", channels=["named"]))
            await pub.publish(make_event(fingerprint="b", host="db-1", severity="critical",
                                         channels=["named"]))
            await pub.publish(make_event(fingerprint="c", host="db-2", severity="critical",
                                         labels={"env": "staging"}, channels=[]))
            await wait_until(lambda: len(hook.requests) == 2 and len(slack.requests) == 1,
                             what="routed messages")
            await asyncio.sleep(1.0)
        assert len(slack.requests) == 1 and "db-1" in slack.requests[0].body["text"]
        assert len(hook.requests) == 2
    finally:
        await notifier.stop()


def _self_signed(cert: Path, key: Path) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_email_over_starttls_with_auth(
    db: str, fresh_amqp_url: str, tmp_path: Path
) -> None:
    """A self-signed certificate for 127.0.0.1 (openssl), trusted through
    notifier_smtp_ca_file; STARTTLS is required before AUTH."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    _self_signed(cert, key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=_authenticator,
                            tls_context=context, require_starttls=True, auth_required=True)
    controller.start()
    try:
        await add_channel(db, {
            "name": "secure-mail", "group_wait": 0,
            "config": {"type": "email", "to": ["a@example.com", "b@example.com"],
                       "from": "nazar@example.com", "smtp_host": "127.0.0.1",
                       "smtp_port": port, "security": "starttls", "username": "alerts",
                       "password": "smtp-secret-456"},
        })
        notifier = await InProcessNotifier(db, fresh_amqp_url,
                                           notifier_smtp_ca_file=str(cert)).start()
        try:
            async with Publisher(fresh_amqp_url) as pub:
                await pub.publish(make_event(channels=["secure-mail"]))
                await wait_until(lambda: len(box.messages) == 1, what="mail over STARTTLS")
            assert sorted(box.envelopes[0].rcpt_tos) == ["a@example.com", "b@example.com"]
            html = box.messages[0].get_body(("html",)).get_content()
            assert "web-1" in html and "<table" in html
        finally:
            await notifier.stop()
    finally:
        controller.stop()
