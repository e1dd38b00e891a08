"""Secrets in channel configurations: URLs are shown in full to admin keys
only, and no secret reaches the logs (at the default INFO level)."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import IngestServer

WEBHOOK_URL = "https://ops:Pa55word@hooks.example.com/hook?token=T0KEN&sig=S1G&team=ops"
SLACK_URL = "https://hooks.slack.example/services/T000/B000/XXXXSECRET"
SECRETS = ("Pa55word", "T0KEN", "S1G", "XXXXSECRET", "H3ADER")


async def test_channel_urls_are_masked_but_to_admins(
    default_server: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    webhook = {"name": "ops-hook", "config": {
        "type": "webhook", "url": WEBHOOK_URL, "headers": {"X-Auth": "H3ADER"}}}
    slack = {"name": "ops-slack", "config": {"type": "slack", "webhook_url": SLACK_URL}}
    async with default_server.client() as admin:
        for channel in (webhook, slack):
            r = await admin.post("/api/v1/channels", json=channel)
            assert r.status_code == 201, r.text
        # An invalid change is explained without echoing the secrets.
        r = await admin.put("/api/v1/channels/ops-hook", json={
            **webhook, "config": {**webhook["config"], "url": "not a url " + WEBHOOK_URL}})
        assert r.status_code == 400
        assert not any(s in r.text for s in SECRETS)
        r = await admin.get("/api/v1/channels/ops-hook")
        assert r.json()["spec"]["config"]["url"] == WEBHOOK_URL
        assert r.json()["spec"]["config"]["headers"] == {"X-Auth": "**********"}
    for key in (default_server.read_key, default_server.ingest_key):
        async with default_server.client(key) as client:
            r = await client.get("/api/v1/channels")
            if key == default_server.ingest_key:
                assert r.status_code == 403
                continue
            assert r.status_code == 200
            assert not any(s in r.text for s in SECRETS), r.text
            shown = {c["name"]: c["spec"]["config"] for c in r.json()}
            assert shown["ops-hook"]["url"] == (
                "https://ops:***@hooks.example.com/hook?token=***&sig=***&team=ops")
            assert shown["ops-slack"]["webhook_url"] == "**********"
            one = (await client.get("/api/v1/channels/ops-hook")).json()
            assert one["spec"]["config"]["url"] == shown["ops-hook"]["url"]
    logged = "\n".join(
        f"{r.getMessage()} {r.__dict__}" for r in caplog.records
    )
    assert not any(s in logged for s in SECRETS)
