"""The notification API of the ingest server: silences, mute windows, deliveries,
failed notifications and channel tests (through a real notifier)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import IngestServer, free_port, start_ingest
from tests.integration.notifier.support import (
    InProcessNotifier,
    Publisher,
    Receiver,
    make_event,
    wait_until,
)


@pytest.fixture
async def api(db: str, fresh_amqp_url: str) -> AsyncIterator[tuple[IngestServer, int]]:
    port = free_port()
    server = await start_ingest(db, fresh_amqp_url, notifier_url=f"http://127.0.0.1:{port}")
    yield server, port
    server.thread.stop()


async def test_silences_crud_and_scopes(api: tuple[IngestServer, int]) -> None:
    server, _ = api
    ends = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    body = {"matchers": [{"name": "host", "op": "=~", "value": "web-.*"}], "ends_at": ends,
            "comment": "deploy"}
    async with server.client(server.read_key) as reader, server.client() as admin:
        denied = await reader.post("/api/v1/silences", json=body)
        assert denied.status_code == 403
        bad = await admin.post("/api/v1/silences", json={**body, "matchers": [
            {"name": "host", "op": "=~", "value": "web-("}]})
        assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
        created = await admin.post("/api/v1/silences", json=body)
        assert created.status_code == 201, created.text
        silence = created.json()
        assert silence["state"] == "active" and silence["created_by"] == "test-admin"
        listed = (await reader.get("/api/v1/silences", params={"active": "true"})).json()
        assert [s["id"] for s in listed] == [silence["id"]]
        expired = await admin.delete(f"/api/v1/silences/{silence['id']}")
        assert expired.status_code == 200 and expired.json()["state"] == "expired"
        assert (await reader.get("/api/v1/silences", params={"active": "true"})).json() == []
        assert len((await reader.get("/api/v1/silences")).json()) == 1
        missing = await admin.delete("/api/v1/silences/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404


async def test_mute_windows_crud(api: tuple[IngestServer, int]) -> None:
    server, _ = api
    window = {"name": "patch-night", "days": ["tue"], "start": "22:00", "end": "02:00",
              "timezone": "Europe/Berlin", "matchers": [{"name": "env", "value": "prod"}]}
    async with server.client() as admin:
        created = await admin.post("/api/v1/mute-windows", json=window)
        assert created.status_code == 201, created.text
        assert created.json()["spec"]["days"] == [1]
        assert (await admin.post("/api/v1/mute-windows", json=window)).status_code == 409
        bad = await admin.put("/api/v1/mute-windows/patch-night",
                              json={**window, "timezone": "Mars/Olympus"})
        assert bad.status_code == 400
        replaced = await admin.put("/api/v1/mute-windows/patch-night",
                                   json={**window, "days": ["tue", "thu"]})
        assert replaced.status_code == 200 and replaced.json()["version"] == 2
        listed = (await admin.get("/api/v1/mute-windows")).json()
        assert [w["name"] for w in listed] == ["patch-night"]
        assert (await admin.delete("/api/v1/mute-windows/patch-night")).status_code == 204
        assert (await admin.get("/api/v1/mute-windows/patch-night")).status_code == 404


async def test_channel_test_deliveries_and_dlq(
    api: tuple[IngestServer, int], db: str, fresh_amqp_url: str, slack: Receiver
) -> None:
    server, port = api
    async with server.client() as admin:
        channel = {"name": "ops", "config": {"type": "slack",
                                             "webhook_url": slack.url + "/T/B/secret-token"},
                   "group_wait": 0}
        assert (await admin.post("/api/v1/channels", json=channel)).status_code == 201
        dead = {"name": "dead", "config": {"type": "webhook",
                                           "url": f"http://127.0.0.1:{free_port()}/x"},
                "group_wait": 0}
        assert (await admin.post("/api/v1/channels", json=dead)).status_code == 201

        # Notifier not running: 503 problem.
        down = await admin.post("/api/v1/channels/ops/test")
        assert down.status_code == 503
        assert down.headers["content-type"] == "application/problem+json"

        notifier = InProcessNotifier(db, fresh_amqp_url)
        notifier.settings.notifier_listen_port = port
        notifier.port = port
        await notifier.start()
        try:
            result = await admin.post("/api/v1/channels/ops/test")
            assert result.status_code == 200, result.text
            outcome = result.json()
            assert outcome["status"] == "sent" and outcome["http_status"] == 200
            assert "secret-token" not in result.text
            assert len(slack.requests) == 1 and "[TEST]" in slack.requests[0].body["text"]
            failing = (await admin.post("/api/v1/channels/dead/test")).json()
            assert failing["status"] == "failed" and failing["attempts"] == 3
            assert (await admin.post("/api/v1/channels/nope/test")).status_code == 404

            async with server.client(server.read_key) as reader:
                async with Publisher(fresh_amqp_url) as pub:
                    await pub.publish(make_event(channels=["ops", "dead"]))
                await wait_until(lambda: len(slack.requests) == 2, what="alert message")

                async def dlq() -> dict[str, object]:
                    return (await reader.get("/api/v1/dlq")).json()

                for _ in range(100):
                    if (await dlq())["failed_total"]:
                        break
                    await __import__("asyncio").sleep(0.1)
                failed = await dlq()
                assert failed["failed_total"] == 1
                item = failed["items"][0]
                assert item["channel"] == "dead" and item["alerts"][0]["host"] == "web-1"

                sent = (await reader.get("/api/v1/deliveries",
                                         params={"channel": "ops", "status": "sent"})).json()
                assert len(sent) == 2 and {d["kind"] for d in sent} == {"test", "firing"}
                since = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
                assert (await reader.get("/api/v1/deliveries",
                                         params={"since": since})).json() == []
                retries = (await reader.get("/api/v1/deliveries",
                                            params={"channel": "dead"})).json()
                assert retries and all("secret" not in (d["error"] or "") for d in retries)
                assert (await reader.get("/api/v1/deliveries",
                                         params={"status": "bogus"})).status_code == 400
        finally:
            await notifier.stop()
