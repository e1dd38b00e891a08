"""The SLOs & availability page in a real browser against a real ingest
server (serving the built app) and database, driven by Debian's Chromium.

A person with an admin key sees the availability of two host groups, opens a
host's outages, finds an SLO's error budget, creates an SLO in the form and
edits it, and opens the printable monthly report; a read key sees the page
without its admin actions.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import IngestServer
from tests.e2e.test_dashboard import HAVE_CHROMIUM, Page, build_dashboard

pytestmark = pytest.mark.slow

STEP = 60.0


async def _seed(server: IngestServer) -> None:
    """Two hours of one-minute samples: ui-web-1 silent for 20 minutes an hour
    ago, ui-db-1 never; request counts with 0.05 % errors on ui-web-1."""
    now = time.time()
    async with server.client(server.ingest_key) as agent:
        for host, role in (("ui-web-1", "ui-web"), ("ui-db-1", "ui-db")):
            samples: list[dict[str, Any]] = []
            for i in range(120):
                t = now - (120 - i) * STEP
                if host == "ui-web-1" and 50 <= i < 70:
                    continue
                samples.append({"metric": "ui.up", "value": 1, "timestamp": t})
                if host == "ui-web-1":
                    samples.append({"metric": "ui.requests", "value": 2000, "timestamp": t})
                    samples.append({"metric": "ui.ok", "value": 1999, "timestamp": t})
            r = await agent.post("/api/v1/metrics", json={
                "host": host, "labels": {"role": role}, "samples": samples})
            assert r.status_code == 202, r.text
    async with server.client() as admin:
        r = await admin.put("/api/v1/slos/ui-api", json={
            "name": "ui-api", "objective": 99.9, "window": "30d",
            "description": "requests that succeed",
            "selector": {"match_labels": {"role": "ui-web"}},
            "indicator": {"kind": "ratio", "good": {"metric": "ui.ok"},
                          "total": {"metric": "ui.requests"}}})
        assert r.status_code in (200, 201), r.text
    for _ in range(100):  # hosts are recorded a moment after their samples
        async with server.client() as admin:
            found = (await admin.get("/api/v1/reports/availability",
                                     params={"period": "3h"})).json()
        if sum(len(g["hosts"]) for g in found["groups"]) >= 2:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("hosts not recorded")


@pytest.fixture(scope="module")
async def served(ingest_server: IngestServer) -> IngestServer:
    if not HAVE_CHROMIUM:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    await asyncio.to_thread(build_dashboard)
    await _seed(ingest_server)
    return ingest_server


async def test_slos_and_availability_from_the_dashboard(served: IngestServer) -> None:
    from playwright.async_api import async_playwright, expect

    server = served
    month = datetime.now(UTC).strftime("%Y-%m")
    async with async_playwright() as pw:
        browser, ui = await Page.launch(pw, server.url)
        page = ui.page
        try:
            await ui.sign_in(server.admin_key)
            await page.get_by_role("link", name="SLOs", exact=True).click()
            await expect(page.get_by_role("heading", name="SLOs & availability")).to_be_visible()

            # --- availability, grouped by role: the 20-minute silence is an outage
            await page.get_by_label("Period").select_option("1d")
            await page.get_by_label("Group by host label").fill("role")
            await page.get_by_role("button", name="Apply").click()
            assert "group=role" in page.url and "period=1d" in page.url
            table = page.get_by_role("table", name="Availability per group and host")
            web = table.get_by_role("row", name="role=ui-web")
            await expect(web).to_contain_text("21m")  # last sample before to first after
            await expect(table.get_by_role("row", name="role=ui-db")).to_contain_text("100.000%")
            await table.get_by_text("ui-web-1", exact=True).click()  # its outages
            outages = page.get_by_role("list", name="Outages of ui-web-1")
            await expect(outages.get_by_role("listitem")).to_have_count(1)
            await expect(outages).to_contain_text("(21m)")

            # --- the SLO with its budget: 0.05 % errors against 0.1 % allowed
            slos = page.get_by_role("table", name="Service level objectives")
            row = slos.get_by_role("row", name="ui-api")
            await expect(row).to_contain_text("99.9500%")
            await expect(row).to_contain_text("50.0%")
            await expect(row).to_contain_text("met")
            await ui.shot("slos")

            # --- create an SLO in the form, then edit it
            await page.get_by_role("button", name="New SLO").click()
            form = page.get_by_role("form", name="New SLO")
            await form.get_by_label("Name").fill("ui-web-up")
            await form.get_by_label("Objective (%)").fill("100")
            await form.get_by_role("button", name="Save SLO").click()
            await expect(form.get_by_text("a percentage above 0 and below 100")).to_be_visible()
            await form.get_by_label("Objective (%)").fill("99.99")
            await form.get_by_label("Host labels").fill("role=ui-web")
            await form.get_by_role("button", name="Save SLO").click()
            await expect(page.get_by_role("status")).to_have_text("SLO ui-web-up saved.")
            new = slos.get_by_role("row", name="ui-web-up")
            await expect(new).to_contain_text("99.99% / 30d")
            await expect(new).to_contain_text("missed")  # 20 minutes down in two hours
            await page.get_by_role("button", name="Edit ui-web-up").click()
            form = page.get_by_role("form", name="Edit SLO ui-web-up")
            await form.get_by_label("Objective (%)").fill("50")
            await form.get_by_role("button", name="Save SLO").click()
            await expect(new).to_contain_text("50% / 30d")
            await expect(new).to_contain_text("met")
            async with server.client() as admin:
                stored = (await admin.get("/api/v1/slos/ui-web-up")).json()
            assert stored["spec"]["objective"] == 50 and stored["version"] == 2
            assert stored["spec"]["selector"]["match_labels"] == {"role": "ui-web"}

            # --- the printable monthly report, opened with the key
            await page.get_by_label("Month", exact=True).fill(month)
            async with page.context.expect_page() as popup_info:
                await page.get_by_role("button", name="Open printable report").click()
            report = await popup_info.value
            await expect(report.get_by_role("heading", name=f"Monthly report — {month}")) \
                .to_be_visible()
            await expect(report.get_by_role("heading", name="role=ui-web")).to_be_visible()
            await expect(report.get_by_role("cell", name="ui-web-up").first).to_be_visible()
            await report.close()
            assert not ui.errors, ui.errors

            # --- a read key sees it all and may change nothing
            await page.get_by_role("button", name="Forget key").click()
            await page.get_by_label("API key").fill(server.read_key)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("heading", name="SLOs & availability")).to_be_visible()
            await ui.goto("/slos")
            await expect(page.get_by_role("row", name="ui-api")).to_contain_text("met")
            await expect(page.get_by_role("button", name="New SLO")).to_be_disabled()
            await expect(page.get_by_role("button", name="Delete ui-api")).to_be_disabled()
            assert not ui.errors, ui.errors
        except BaseException:
            print(f"page: {page.url}\nbrowser errors: {ui.errors}")
            with contextlib.suppress(Exception):
                print((await page.locator("main").inner_text())[:3000])
            raise
        finally:
            await browser.close()
