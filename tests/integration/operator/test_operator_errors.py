"""Error translation of the rule handlers, called directly against a real API."""

from __future__ import annotations

from typing import Any

import asyncpg
import kopf
import pytest

from nazar_common.errors import InvalidInputError, TransientError
from nazar_operator.handlers import RuleSync
from nazar_operator.nazar_api import NazarApi
from nazar_operator.reconcile import RuleBody, owned_rules
from tests.conftest import free_port

GEN = 3


def invalid_body() -> tuple[RuleBody, ...]:
    # Not validated locally: only the API can refuse it.
    return (RuleBody("team-b-broken", {"name": "team-b-broken", "params": {"kind": "nope"}}),)


def fields(stored: list[dict[str, Any]]) -> dict[str, Any]:
    return {"ruleName": stored[0]["name"], "ruleVersion": stored[0]["version"]}


async def test_api_validation_error_is_permanent(ingest_server: Any) -> None:
    api = NazarApi(ingest_server.url, ingest_server.admin_key)
    try:
        with pytest.raises(InvalidInputError, match="params"):
            await api.put_rule("team-b-broken", invalid_body()[0].body)
        patch = kopf.Patch()
        sync = RuleSync(api, retry_delay=7.0)
        with pytest.raises(kopf.PermanentError):
            await sync.apply(invalid_body, {}, GEN, "uid-b", patch, fields)
        cond = patch["status"]["conditions"][0]
        assert (cond["type"], cond["status"], cond["reason"]) == ("Ready", "False", "Invalid")
        assert patch["status"]["observedGeneration"] == GEN
        assert "ruleVersion" not in patch["status"]
    finally:
        await api.aclose()


async def test_unreachable_api_is_temporary_with_delay() -> None:
    api = NazarApi(f"http://127.0.0.1:{free_port()}", "nzr_x_y", timeout=2)
    body = RuleBody("team-b-ok", {
        "name": "team-b-ok", "metric": "m", "params": {"kind": "threshold", "value": 1},
    })
    try:
        with pytest.raises(TransientError):
            await api.put_rule(body.name, body.body)
        patch = kopf.Patch()
        previous = {"conditions": [{
            "type": "Ready", "status": "True", "reason": "Applied", "message": "",
            "lastTransitionTime": "2020-01-01T00:00:00Z",
        }]}
        with pytest.raises(kopf.TemporaryError) as caught:
            await RuleSync(api, retry_delay=7.0).apply(lambda: (body,), previous, GEN, "uid-b",
                                                       patch, fields)
        assert caught.value.delay == 7.0
        cond = patch["status"]["conditions"][0]
        assert (cond["status"], cond["reason"]) == ("False", "ApiUnavailable")
        assert cond["lastTransitionTime"] != "2020-01-01T00:00:00Z"
    finally:
        await api.aclose()


async def test_refused_key_is_temporary(ingest_server: Any) -> None:
    api = NazarApi(ingest_server.url, ingest_server.read_key)
    try:
        with pytest.raises(TransientError, match="403"):
            await api.put_rule("team-b-x", {"metric": "m", "params": {"kind": "absence"}})
    finally:
        await api.aclose()


async def test_delete_is_idempotent(ingest_server: Any) -> None:
    api = NazarApi(ingest_server.url, ingest_server.admin_key)
    try:
        await api.put_rule("team-b-gone", {"params": {"kind": "absence"}})
        assert await api.delete_rule("team-b-gone") is True
        assert await api.delete_rule("team-b-gone") is False
        await RuleSync(api, 1.0).delete(["team-b-gone"], "uid", {}, 1, kopf.Patch())  # no error
    finally:
        await api.aclose()


async def test_a_sync_failing_halfway_records_the_rules_it_created(ingest_server: Any) -> None:
    """The third of three rules fails in the API: the status lists the first two,
    so deleting the resource deletes them (no orphans)."""
    names = ["team-b-half-1", "team-b-half-2", "team-b-half-3"]
    bodies = tuple(
        RuleBody(n, {"name": n, "params": {"kind": "absence"}, "selector": {"hosts": ["h"]}})
        for n in names
    )
    conn = await asyncpg.connect(ingest_server.database_url)
    await conn.execute(
        "CREATE FUNCTION test_refuse_half() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN IF NEW.name = 'team-b-half-3' THEN RAISE EXCEPTION 'refused'; END IF; "
        "RETURN NEW; END $$")
    await conn.execute("CREATE TRIGGER test_refuse_half BEFORE INSERT ON rules "
                       "FOR EACH ROW EXECUTE FUNCTION test_refuse_half()")
    api = NazarApi(ingest_server.url, ingest_server.admin_key)
    sync = RuleSync(api, retry_delay=1.0)
    try:
        patch = kopf.Patch()
        with pytest.raises(kopf.TemporaryError):
            await sync.apply(lambda: bodies, {}, 1, "uid-half", patch, lambda _: {})
        assert patch["status"]["rules"] == names[:2]
        assert set(patch["status"]["ruleVersions"]) == set(names[:2])
        assert patch["status"]["conditions"][0]["reason"] == "ApiUnavailable"
        recorded = dict(patch["status"])
        await sync.delete(owned_rules(recorded, ()), "uid-half", recorded, 1, kopf.Patch())
        async with ingest_server.client() as client:
            for n in names:
                assert (await client.get(f"/api/v1/rules/{n}")).status_code == 404
    finally:
        await conn.execute("DROP TRIGGER test_refuse_half ON rules")
        await conn.execute("DROP FUNCTION test_refuse_half()")
        await conn.close()
        await api.aclose()
