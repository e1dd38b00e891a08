"""Availability, SLOs and the monthly report through the API, against a real
server and database: hosts with known gaps, event counts with a known error
ratio, alerts with known acknowledgement times."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from tests.conftest import IngestServer, start_ingest

pytestmark = pytest.mark.timeout(120)

STEP = 10.0
SPAN = 10800.0  # three hours


def _times(t0: float, until: float, gaps: list[tuple[float, float]]) -> list[float]:
    """Sample times every STEP from t0 (inclusive) to until (exclusive), none in the gaps."""
    out = []
    t = t0
    while t < until:
        if not any(a <= t - t0 < b for a, b in gaps):
            out.append(t)
        t += STEP
    return out


async def _post(server: IngestServer, host: str, labels: dict[str, str],
                samples: list[dict[str, Any]]) -> None:
    async with server.client(server.ingest_key) as client:
        for i in range(0, len(samples), 5000):
            r = await client.post("/api/v1/metrics", json={
                "host": host, "labels": labels, "samples": samples[i:i + 5000]})
            assert r.status_code == 202, r.text


async def _hosts_recorded(server: IngestServer, hosts: list[str]) -> None:
    conn = await asyncpg.connect(server.database_url)
    try:
        for _ in range(100):
            n = await conn.fetchval("SELECT count(*) FROM hosts WHERE host = ANY($1)", hosts)
            if n == len(hosts):
                return
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise AssertionError("hosts not recorded")


@pytest.fixture(scope="module")
async def fleet(ingest_server: IngestServer) -> float:
    """Three hosts over three hours ending 10 minutes ago, t0 at a quarter second:

    * av-web-1 (role=web): silent 610 s (from 1190 s) and 410 s (from 4990 s),
      and 200 s (shorter than the 5-minute gap: not an outage);
    * av-web-2 (role=web): stops at 9000 s (an outage until the end);
    * av-db-1 (role=db): never silent."""
    t0 = math.floor(time.time()) - SPAN - 600 + 0.25
    plan = {
        "av-web-1": ({"role": "web"}, _times(t0, t0 + SPAN, [(1200, 1800), (3010, 3200),
                                                            (5000, 5400)])),
        "av-web-2": ({"role": "web"}, _times(t0, t0 + 9000 + 1, [])),
        "av-db-1": ({"role": "db"}, _times(t0, t0 + SPAN, [])),
    }
    for host, (labels, times) in plan.items():
        await _post(ingest_server, host, labels,
                    [{"metric": "av.up", "value": 1, "timestamp": t} for t in times])
    await _hosts_recorded(ingest_server, list(plan))
    return t0


async def test_availability_of_hosts_with_known_gaps_to_the_second(
    ingest_server: IngestServer, fleet: float
) -> None:
    t0 = fleet
    async with ingest_server.client(ingest_server.read_key) as client:
        r = await client.get("/api/v1/reports/availability", params={
            "start": str(t0), "end": str(t0 + SPAN), "group_by": "label:role", "gap": "5m",
            "host": ["av-web-1", "av-web-2", "av-db-1"]})
    assert r.status_code == 200, r.text
    body = r.json()
    groups = {g["group"]["role"]: g for g in body["groups"]}
    assert set(groups) == {"web", "db"}
    hosts = {h["host"]: h for g in body["groups"] for h in g["hosts"]}

    web1 = hosts["av-web-1"]
    assert web1["outages"] == 2
    assert web1["monitored_seconds"] == SPAN
    assert web1["downtime_seconds"] == 610 + 410
    assert web1["uptime_percent"] == pytest.approx(100 * (1 - 1020 / SPAN), abs=1e-6)
    assert web1["longest_outage"] == {"start": t0 + 1190, "end": t0 + 1800, "seconds": 610,
                                      "ongoing": False}
    assert web1["mttr_seconds"] == 510
    assert [(o["start"] - t0, o["seconds"]) for o in web1["outage_list"]] == [
        (4990, 410), (1190, 610)]  # newest first

    web2 = hosts["av-web-2"]
    assert web2["outages"] == 1 and web2["downtime_seconds"] == SPAN - 9000
    assert web2["longest_outage"]["ongoing"] is True and web2["down_at_end"] is True
    assert web1["down_at_end"] is False
    assert web2["mttr_seconds"] is None  # it has not recovered

    db1 = hosts["av-db-1"]
    assert db1["uptime_percent"] == 100 and db1["outages"] == 0
    assert db1["longest_outage"] is None

    web = groups["web"]  # the group: host-seconds summed
    assert web["monitored_seconds"] == 2 * SPAN
    assert web["downtime_seconds"] == 1020 + SPAN - 9000
    assert web["outages"] == 3 and web["longest_outage"]["seconds"] == SPAN - 9000
    assert web["mttr_seconds"] == 510

    # a longer gap: the 410 s silence is no longer an outage
    async with ingest_server.client(ingest_server.read_key) as client:
        r = await client.get("/api/v1/reports/availability", params={
            "start": str(t0), "end": str(t0 + SPAN), "gap": "500s", "host": "av-web-1"})
    (only,) = r.json()["groups"]
    assert only["group"] == {} and only["hosts"][0]["downtime_seconds"] == 610


@pytest.mark.parametrize(("params", "fragment"), [
    ({"group_by": "role"}, "label:<host label name>"),
    ({"period": "soon"}, "period"),
    ({"period": "1d", "start": "now-1d"}, "not both"),
    ({"gap": "2d"}, "gap"),
    ({"start": "now", "end": "now-1h"}, "end after"),
    ({"host": "bad host"}, "host"),
])
async def test_availability_refuses_bad_parameters(
    ingest_server: IngestServer, params: dict[str, str], fragment: str
) -> None:
    async with ingest_server.client(ingest_server.read_key) as client:
        r = await client.get("/api/v1/reports/availability", params=params)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert fragment in r.json()["detail"]


async def test_slo_crud_and_error_budget(ingest_server: IngestServer, fleet: float) -> None:
    """A ratio SLO over request counts with about 0.05 % errors in the last
    hour against a 99.9 % objective: about half the budget is left, and the
    budget burns at about 0.5."""
    now = time.time()
    t_start = math.floor(now) - 3595 + 0.5
    samples = []
    for i in range(359):
        t = t_start + i * STEP
        samples.append({"metric": "slo.requests", "value": 1000, "timestamp": t})
        samples.append({"metric": "slo.ok", "value": 1000 - (5 if i % 10 == 0 else 0),
                        "timestamp": t})
    await _post(ingest_server, "slo-api-1", {"role": "api"}, samples)
    await _hosts_recorded(ingest_server, ["slo-api-1"])
    spec = {"name": "api-success", "objective": 99.9, "window": "2h",
            "selector": {"match_labels": {"role": "api"}},
            "indicator": {"kind": "ratio", "good": {"metric": "slo.ok"},
                          "total": {"metric": "slo.requests"}}}
    async with ingest_server.client(ingest_server.read_key) as reader:
        r = await reader.post("/api/v1/slos", json=spec)
        assert r.status_code == 403  # writes need admin
    async with ingest_server.client() as admin:
        r = await admin.post("/api/v1/slos", json=spec)
        assert r.status_code == 201, r.text
        assert r.json()["spec"]["window"] == 7200
        r = await admin.post("/api/v1/slos", json=spec)
        assert r.status_code == 409
        bad = {**spec, "name": "bad", "objective": 100}
        r = await admin.post("/api/v1/slos", json=bad)
        assert r.status_code == 400 and r.json()["errors"][0]["loc"] == "objective"
        r = await admin.put("/api/v1/slos/web-up", json={
            "name": "web-up", "objective": 99, "window": "4h",
            "selector": {"match_labels": {"role": "web"}},
            "indicator": {"kind": "availability", "gap": "5m"}})
        assert r.status_code == 201, r.text
    async with ingest_server.client(ingest_server.read_key) as reader:
        r = await reader.get("/api/v1/slos/api-success")
        assert r.status_code == 200, r.text
        st = r.json()["status"]
    total = 359 * 1000
    assert st["total"] == total and st["good"] == total - 36 * 5
    assert st["sli_percent"] == pytest.approx(100 * (1 - 180 / total), abs=1e-6)
    burn = 180 / total / 0.001
    assert st["error_budget_remaining"] == pytest.approx(1 - burn, abs=1e-6)
    assert st["attained"] is True
    assert st["burn_rates"]["6h"] == pytest.approx(burn, abs=1e-6)
    async with ingest_server.client(ingest_server.read_key) as reader:
        r = await reader.get("/api/v1/slos")
    by_name = {s["name"]: s for s in r.json()}
    web = by_name["web-up"]["status"]  # availability: host-seconds of av-web-1 and av-web-2
    assert web["total"] > 0 and web["attained"] is False
    async with ingest_server.client() as admin:
        assert (await admin.delete("/api/v1/slos/web-up")).status_code == 204
        assert (await admin.get("/api/v1/slos/web-up")).status_code == 404


async def test_monthly_report_json_and_html(ingest_server: IngestServer, fleet: float) -> None:
    """Alerts by rule and severity and time to acknowledge, per group, for the
    current month (the fleet's hours are in it unless the month just began)."""
    now = datetime.now(UTC)
    month = f"{now.year:04d}-{now.month:02d}"
    # A host without the role label (its own group, role ""): the burn_rate
    # alert, which has no host, still belongs to no group.
    await _post(ingest_server, "av-bare", {}, [
        {"metric": "av.up", "value": 1, "timestamp": time.time() - 120 + i * 10}
        for i in range(6)])
    await _hosts_recorded(ingest_server, ["av-bare"])
    conn = await asyncpg.connect(ingest_server.database_url)
    try:
        fired = datetime.fromtimestamp(time.time() - 3600, UTC)
        for i, (rule, sev, host, ack) in enumerate([
            ("cpu-high", "critical", "av-web-1", 120.0),
            ("cpu-high", "critical", "av-web-2", 300.0),
            ("disk-full", "warning", "av-web-1", None),
            ("disk-full", "warning", "av-db-1", 60.0),
            ("api-burn", "critical", "", None),  # a burn_rate alert: no host
        ]):
            await conn.execute(
                "INSERT INTO alerts (fingerprint, rule_id, rule_name, kind, subject, host, "
                "severity, state, started_at, fired_at, acked_at) VALUES ($1, 1, $2, "
                "'threshold', $3, $4, $5, 'resolved', $6::timestamptz, $6::timestamptz, "
                "$6::timestamptz + $7::float8 * interval '1 second')",
                f"fp{i}", rule, f"h:{host}", host, sev, fired, ack)
    finally:
        await conn.close()
    async with ingest_server.client() as admin:
        r = await admin.put("/api/v1/slos/mon-web", json={
            "name": "mon-web", "objective": 99, "selector": {"match_labels": {"role": "web"}},
            "indicator": {"kind": "availability"}})
        assert r.status_code in (200, 201), r.text
    async with ingest_server.client(ingest_server.read_key) as client:
        r = await client.get("/api/v1/reports/monthly",
                             params={"month": month, "group_by": "label:role"})
        assert r.status_code == 200, r.text
        body = r.json()
        groups = {g["group"]["role"]: g for g in body["groups"]}
        web = groups["web"]
        assert web["alerts"] == {"total": 3, "by_rule": {"cpu-high": 2, "disk-full": 1},
                                 "by_severity": {"critical": 2, "warning": 1}}
        assert web["time_to_acknowledge"] == {"acknowledged": 2, "mean_seconds": 210,
                                              "median_seconds": 210, "max_seconds": 300}
        assert groups["db"]["alerts"]["by_rule"] == {"disk-full": 1}
        assert body["alerts_outside_groups"] == {"total": 1, "by_rule": {"api-burn": 1},
                                                 "by_severity": {"critical": 1}}
        assert {h["host"] for h in web["hosts"]} >= {"av-web-1", "av-web-2"}
        assert web["availability"]["outages"] >= 3
        assert any(s["name"] == "mon-web" for s in web["slos"])
        assert not any(s["name"] == "mon-web" for s in groups["db"]["slos"])
        r = await client.get("/api/v1/reports/monthly.html",
                             params={"month": month, "group_by": "label:role"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert f"Monthly report — {month}" in r.text and "role=web" in r.text
        assert "cpu-high" in r.text and "@media print" in r.text
        assert "Alerts outside these groups (1)" in r.text
        r = await client.get("/api/v1/reports/monthly", params={"month": "2026-13"})
        assert r.status_code == 400 and "YYYY-MM" in r.json()["detail"]
        r = await client.get("/api/v1/reports/monthly", params={"month": "2999-01"})
        assert r.status_code == 400
    async with ingest_server.client("bogus") as anonymous:
        r = await anonymous.get("/api/v1/reports/monthly.html")
        assert r.status_code == 401


async def test_cli_applies_slos_and_prints_reports(
    ingest_server: IngestServer, fleet: float, tmp_path: Any
) -> None:
    from typer.testing import CliRunner

    from nazar_cli.main import app

    def invoke(args: list[str], key: str):  # type: ignore[no-untyped-def]
        env = {"NAZAR_API_URL": ingest_server.url, "NAZAR_API_KEY": key}
        return asyncio.to_thread(CliRunner().invoke, app, args, env=env)

    file = tmp_path / "slos.yaml"
    file.write_text(
        "slos:\n"
        "  - name: cli-web-up\n    objective: 99\n    window: 3h\n"
        "    selector: {match_labels: {role: web}}\n    indicator: {kind: availability}\n")
    result = await invoke(["slo", "apply", str(file)], ingest_server.read_key)
    assert result.exit_code == 1 and "HTTP 403" in result.output
    result = await invoke(["slo", "apply", str(file)], ingest_server.admin_key)
    assert result.exit_code == 0 and "created slo cli-web-up (version 1)" in result.output
    result = await invoke(["slo", "list"], ingest_server.read_key)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("cli-web-up"))
    assert line.split("\t")[1] == "99% / 3h" and line.endswith("NO")  # 2 web hosts, outages
    result = await invoke(["report", "availability", "--period", "1d", "--group-by", "role"],
                          ingest_server.read_key)
    assert result.exit_code == 0, result.output
    web1 = next(x for x in result.output.splitlines() if x.strip().startswith("av-web-1"))
    # its two silences, and the one since its samples ended ten minutes ago
    assert web1.split("\t")[2] == "3" and web1.split("\t")[5] == "8m30s"  # MTTR of the two
    result = await invoke(["report", "monthly", "--html", "--group-by", "role",
                           "--month", datetime.now(UTC).strftime("%Y-%m")],
                          ingest_server.read_key)
    assert result.exit_code == 0 and "<h1>Monthly report" in result.output
    result = await invoke(["slo", "delete", "cli-web-up"], ingest_server.admin_key)
    assert result.exit_code == 0


async def test_ratio_slo_over_cumulative_counters_with_a_reset(
    ingest_server: IngestServer,
) -> None:
    """Cumulative counters (as Prometheus sends them) grow by 1000 requests
    and 990 successes every 10 s and restart from zero half way: the SLO counts
    their increases (a drop is a reset whose new value is the increase)."""
    now = math.floor(time.time())
    t_start = now - 1795 + 0.5
    samples = []
    total = good = 50_000.0
    for i in range(180):
        if i == 100:  # the process restarts: counters from zero
            total = good = 0.0
        total += 1000
        good += 990
        t = t_start + i * STEP
        samples.append({"metric": "cnt.requests_total", "value": total, "timestamp": t})
        samples.append({"metric": "cnt.ok_total", "value": good, "timestamp": t})
    await _post(ingest_server, "cnt-api-1", {"role": "cnt"}, samples)
    await _hosts_recorded(ingest_server, ["cnt-api-1"])
    async with ingest_server.client() as admin:
        r = await admin.put("/api/v1/slos/cnt-api", json={
            "name": "cnt-api", "objective": 99, "window": "1h",
            "indicator": {"kind": "ratio", "counter": True,
                          "good": {"metric": "cnt.ok_total"},
                          "total": {"metric": "cnt.requests_total"}}})
        assert r.status_code == 201, r.text
        st = (await admin.get("/api/v1/slos/cnt-api")).json()["status"]
    # the first sample has no earlier value: 179 increases
    assert st["total"] == 179 * 1000 and st["good"] == 179 * 990
    assert st["error_budget_remaining"] == pytest.approx(0.0, abs=1e-9)


async def test_a_report_past_the_timeout_is_refused_not_left_running(
    ingest_server: IngestServer, fleet: float
) -> None:
    """With NAZAR_REPORT_TIMEOUT at 1 ms the database stops the presence scan:
    422 naming the limit, and the server keeps answering."""
    server = await start_ingest(ingest_server.database_url, ingest_server.amqp_url,
                                report_timeout=0.001)
    try:
        async with server.client(server.read_key) as client:
            r = await client.get("/api/v1/reports/availability", params={"period": "1d"})
            assert r.status_code == 422, r.text
            assert "NAZAR_REPORT_TIMEOUT" in r.json()["detail"]
            r = await client.get("/api/v1/slos", params={"status": "false"})
            assert r.status_code == 200
    finally:
        server.thread.stop()
