"""Deploy markers and capacity forecasts in a real browser against a real stack
(the same stack as test_dashboard: ingest serving the built app, analyzer and
notifier processes, PostgreSQL, RabbitMQ, Debian's Chromium).

A pipeline records a deploy with the real CLI (``nazar events deploy``); its
marker is on the host's CPU chart, named in the chart's tooltip and marker
list; a CPU alert that starts after it carries the deploy annotation on its
page. Two weeks of disk history are stored; the Capacity view lists the disk
that fills soonest first, charts it with its projected trend and expected
crossing, and makes a forecast rule from it; the analyzer fires that rule,
and the alert's page leads back to the forecast.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.pipeline import Pipeline
from tests.e2e.test_dashboard import (
    HOST,
    LABELS,
    OTHER,
    Page,
    breach_until_firing,
    explain,
    stack,
    wait_until,
)
from tests.integration.query.test_query_api import Row, insert_direct

pytestmark = pytest.mark.slow
__all__ = ["stack"]  # the module's stack fixture: its own database, vhost and processes

DAY = 86400.0
RULE = "cpu-after-deploy"
VERSION = "v1.2.3"
NAZAR = Path(sys.executable).with_name("nazar")


async def seed_history(database_url: str) -> float:
    """Two weeks of disk usage: web-1 from 30 % at +3 % a day (90 % in six
    days), db-1 flat at 50 %. Returns web-1's true crossing time."""
    now = time.time()
    start = now - 14 * DAY
    rows: list[Row] = []
    t = start
    while t < now - 3600:
        rows.append((HOST, "disk.used_percent", {"mount": "/"}, t, 30 + 3 * (t - start) / DAY))
        rows.append((OTHER, "disk.used_percent", {"mount": "/"}, t, 50.0))
        t += 900
    await insert_direct(database_url, rows)
    return start + 20 * DAY


async def seed_recent(agent: httpx.AsyncClient) -> None:
    """An hour of one-minute CPU samples (and host labels) for both hosts."""
    now = time.time()
    for host in (HOST, OTHER):
        samples = [{"metric": "cpu.usage_percent", "value": 30.0 + i % 7,
                    "timestamp": now - (60 - i) * 60, "labels": {"cpu": "total"}}
                   for i in range(60)]
        r = await agent.post("/api/v1/metrics",
                             json={"host": host, "labels": LABELS[host], "samples": samples})
        assert r.status_code == 202, r.text


def cli_deploy(url: str, key: str, start: str) -> dict[str, Any]:
    """What a CI job runs: ``nazar events deploy``."""
    import json

    result = subprocess.run(
        [str(NAZAR), "events", "deploy", "--service", "web", "--version", VERSION,
         "--hosts", HOST, "--link", "https://ci.example/runs/42", "--start", start,
         "--output", "json"],
        env={**os.environ, "NAZAR_API_URL": url, "NAZAR_API_KEY": key},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(json.loads(result.stdout))


async def test_deploy_markers_and_capacity_in_the_app(stack: Pipeline) -> None:
    from playwright.async_api import async_playwright, expect

    assert stack.ingest is not None
    server = stack.ingest
    admin = server.client()
    agent = server.client(server.ingest_key)
    crossing = await seed_history(server.database_url)
    await seed_recent(agent)
    r = await admin.post("/api/v1/rules", json={
        "name": RULE, "metric": "cpu.usage_percent", "match_series_labels": {"cpu": "total"},
        "params": {"kind": "threshold", "comparator": ">", "value": 90},
        "deploys": {"annotate_within": "30m"}, "severity": "critical"})
    assert r.status_code == 201, r.text
    # the deploy, twenty minutes ago, recorded by the CLI as a pipeline would
    deployed_at = time.time() - 1200
    event = await asyncio.to_thread(cli_deploy, server.url, server.ingest_key,
                                    datetime.fromtimestamp(deployed_at, UTC).isoformat())
    assert event["kind"] == "deploy" and event["version"] == VERSION
    await asyncio.sleep(1.0)  # the analyzer reloads rules and events on NOTIFY

    await breach_until_firing(agent, admin)
    alert = (await admin.get("/api/v1/alerts", params={"state": "firing"})).json()["items"][0]
    assert alert["rule_name"] == RULE
    assert alert["annotations"]["deploy"].startswith("started 2"), alert["annotations"]
    assert f"after deploy web {VERSION}" in alert["annotations"]["deploy"]

    async with async_playwright() as pw:
        browser, ui = await Page.launch(pw, server.url)
        page = ui.page
        try:
            await ui.sign_in(server.admin_key)

            # --- the deploy on the host's CPU chart: marker list and tooltip
            opened = time.time()
            await ui.goto(f"/hosts/{HOST}?from=now-1h&to=now")
            cpu = page.get_by_role("article", name="CPU")
            await expect(cpu.locator(".uplot")).to_have_count(1)
            label = f"deploy: deploy web {VERSION}"
            markers = cpu.locator("details.markers")
            await expect(markers).to_contain_text("marker")
            await markers.locator("summary").click()
            await expect(markers.get_by_text(label)).to_be_visible()
            await ui.shot("host-deploy")
            over = cpu.locator(".u-over")
            box = await over.bounding_box()
            assert box is not None
            x = box["x"] + box["width"] * (deployed_at - (opened - 3600)) / 3600
            tip = cpu.locator(".chart-tooltip .tip-marker", has_text=label)
            for dx in (0, -3, 3, -6, 6, -9, 9, -12, 12):
                await page.mouse.move(x + dx, box["y"] + box["height"] / 2)
                if await tip.count():
                    break
            await expect(tip).to_be_visible()
            # the disk panel links to its forecast
            disk_forecast = page.get_by_role("link", name="Forecast Disk space")
            await expect(disk_forecast).to_have_attribute(
                "href", f"/capacity?metric=disk.used_percent&threshold=90&host={HOST}")

            # --- the alert that started after it says so
            await ui.goto(f"/alerts/{alert['id']}")
            await expect(page.get_by_role("heading", name=f"{RULE} on {HOST}")).to_be_visible()
            facts = page.locator("dl.facts", has=page.locator("dt", has_text="deploy"))
            await expect(facts.locator("dd").first).to_contain_text(f"after deploy web {VERSION}")
            await expect(page.get_by_text("https://ci.example/runs/42")).to_be_visible()

            # --- capacity: the fleet's disks, the soonest first
            await page.get_by_role("link", name="Capacity", exact=True).click()
            await expect(page.get_by_role("heading", name="Capacity")).to_be_visible()
            table = page.get_by_role("table")
            rows = table.locator("tbody tr")
            await expect(rows).to_have_count(2)
            await expect(rows.nth(0).get_by_role("rowheader")).to_contain_text(HOST)
            await expect(rows.nth(0)).to_contain_text("in 6.")
            await expect(rows.nth(1)).to_contain_text("not crossing")
            await expect(page.get_by_role("status").first).to_contain_text(
                "1 of 2 series expected to reach 90 within 30 days")
            # one disk: history, projected trend, threshold and crossing on the chart
            await rows.nth(0).get_by_role("button", name=f"Chart {HOST} mount=/").click()
            figure = page.get_by_role("figure", name=f"Forecast of disk.used_percent on {HOST}")
            await expect(figure.locator(".uplot")).to_have_count(1)
            await expect(figure.get_by_role("button", name="projected trend")).to_be_visible()
            summary = page.locator(".forecast-summary")
            await expect(summary).to_contain_text(
                f"disk.used_percent on {HOST} is expected to reach 90 in 6.")
            await figure.locator("details.markers summary").click()
            await expect(figure.get_by_text("expected to reach 90")).to_be_visible()
            body = (await admin.get("/api/v1/forecast", params={
                "metric": "disk.used_percent", "host": HOST, "threshold": 90})).json()
            [f] = body["forecasts"]
            assert abs(f["crossing_ts"] - crossing) < 0.05 * (crossing - body["now_ts"])
            await ui.shot("capacity")

            # --- and a forecast rule from it
            await page.get_by_role("link", name="Alert on it").click()
            await expect(page.get_by_label("Kind")).to_have_value("forecast")
            await page.get_by_label("Name", exact=True).fill("disk-full-soon")
            await page.get_by_label("Horizon", exact=True).fill("7d")
            await page.get_by_role("button", name="Create rule").click()
            await expect(page.get_by_role("link", name="disk-full-soon")).to_be_visible()
            condition = "disk.used_percent expected above 90 within 7d"
            await expect(page.get_by_text(condition)).to_be_visible()
            stored = (await admin.get("/api/v1/rules/disk-full-soon")).json()
            assert stored["spec"]["params"]["kind"] == "forecast"
            assert stored["spec"]["params"]["horizon"] == 7 * DAY

            # --- the analyzer fires it for web-1 (90 % in six days), explained
            async def forecast_alert() -> Any:
                found = (await admin.get("/api/v1/alerts", params={"state": "firing"})).json()
                return next((a for a in found["items"] if a["rule_name"] == "disk-full-soon"),
                            None)

            fired = await wait_until(forecast_alert, "the forecast rule to fire")
            assert fired["host"] == HOST and "predicted_crossing" in fired["annotations"]
            await ui.goto(f"/alerts/{fired['id']}")
            await expect(page.locator("p.explanation")).to_contain_text(
                f"disk.used_percent on {HOST} is expected to reach 90 in 6.")
            await page.get_by_role("link", name="See the forecast").click()
            await expect(page.get_by_role(
                "figure", name=f"Forecast of disk.used_percent on {HOST}").locator(".uplot")
            ).to_have_count(1)
            await expect(page.locator(".forecast-summary")).to_contain_text("in 6.")
            assert not ui.errors, ui.errors
        except BaseException:
            await explain(ui, stack)
            raise
        finally:
            await browser.close()
            await admin.aclose()
            await agent.aclose()
