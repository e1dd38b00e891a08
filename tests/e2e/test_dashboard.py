"""The dashboard in a real browser against a real stack.

Ingest (in this process, serving the built app), the analyzer and the
notifier (processes), PostgreSQL and RabbitMQ (a database and vhost of this
test's own), a webhook receiver on 127.0.0.1, and Debian's Chromium driven by
Playwright (``executable_path``; nothing is downloaded).

A person signs in with a key, creates a threshold rule in the form,
previews its backtest over the stored history and saves it; samples that
breach it are pushed; the alert appears, is acknowledged and silenced from
the alert (matchers pre-filled); a webhook channel is created and sends a
test to the receiver; the host view's CPU chart is zoomed by dragging, and
a reload shows the same view from the URL. A read-only key sees no admin
actions. With ``NAZAR_SCREENSHOTS_DIR`` set, every page is photographed in
the light and the dark theme (``make screenshots`` refreshes
docs/screenshots).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import create_database, create_vhost, delete_vhost, drop_database
from tests.e2e.pipeline import Pipeline

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("NAZAR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
SHOTS = os.environ.get("NAZAR_SCREENSHOTS_DIR")
HOST = "web-1"
OTHER = "db-1"
RULE = "cpu-high"


def build_dashboard() -> None:
    """The app is built from its sources (quick when they did not change)."""
    result = subprocess.run([str(ROOT / "scripts" / "ensure-dashboard.sh")], capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


LABELS = {HOST: {"env": "prod", "role": "web"}, OTHER: {"env": "prod", "role": "db"}}


async def seed(client: httpx.AsyncClient) -> None:
    """Two hours of one-minute samples for two hosts; web-1's CPU peaks at
    96 % for five minutes an hour ago (what the backtest should find)."""
    now = time.time()
    for host, scale in ((HOST, 1.0), (OTHER, 0.5)):
        samples: list[dict[str, Any]] = []
        for i in range(120):
            t = now - (120 - i) * 60
            cpu = 96.0 if 55 <= i < 60 else 30.0 + (i % 7)
            samples += [
                {"metric": "cpu.usage_percent", "value": cpu * scale, "timestamp": t,
                 "labels": {"cpu": "total"}},
                {"metric": "mem.used_percent", "value": 40 + i % 5, "timestamp": t},
                {"metric": "disk.used_percent", "value": 61.5, "timestamp": t,
                 "labels": {"mount": "/"}},
                {"metric": "net.rx_bytes_per_sec", "value": 1.5e6 + i * 1e4, "timestamp": t,
                 "labels": {"interface": "eth0"}},
                {"metric": "net.tx_bytes_per_sec", "value": 4.0e5, "timestamp": t,
                 "labels": {"interface": "eth0"}},
            ]
        r = await client.post("/api/v1/metrics",
                              json={"host": host, "labels": LABELS[host], "samples": samples})
        assert r.status_code == 202, r.text


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Pipeline]:
    if not HAVE_CHROMIUM:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    await asyncio.to_thread(build_dashboard)
    token = secrets.token_hex(4)
    database_url = await create_database(f"nazar_test_ui_{token}")
    amqp_url = create_vhost(f"nazar-test-ui-{token}")
    pipeline = Pipeline(database_url, amqp_url)
    try:
        # Rollups (the fleet's sparklines) refreshed every second.
        await pipeline.start(configure=False, maintenance_interval=1.0)
        yield pipeline
    finally:
        await pipeline.stop()
        await drop_database(f"nazar_test_ui_{token}")
        delete_vhost(f"nazar-test-ui-{token}")


class Page:
    """A Playwright page with the checks every step wants: no uncaught
    errors, no failed requests except those expected."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("console", self._console)

    def _console(self, msg: Any) -> None:
        if msg.type != "error":
            return
        url = (msg.location or {}).get("url", "")
        # The events API may not exist (404: no markers) and a wrong key is
        # refused on purpose (401).
        if "/api/v1/events" in url or "/api/v1/auth/whoami" in url:
            return
        self.errors.append(f"console: {msg.text} at {url}")

    @classmethod
    async def launch(cls, pw: Any, base: str) -> tuple[Any, Page]:
        """Debian's Chromium (nothing downloaded) with one light-themed page."""
        from playwright.async_api import expect

        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 860},
                                            color_scheme="light")
        expect.set_options(timeout=20_000)
        return browser, cls(await context.new_page(), base)

    async def sign_in(self, key: str) -> None:
        """Sign in with ``key`` from the start page; the fleet opens."""
        from playwright.async_api import expect

        await self.goto("/")
        await self.page.get_by_label("API key").fill(key)
        await self.page.get_by_role("button", name="Sign in").click()
        await expect(self.page.get_by_role("heading", name="Fleet")).to_be_visible()

    async def goto(self, path: str) -> None:
        await self.page.goto(self.base + path)

    async def shot(self, name: str) -> None:
        if not SHOTS:
            return
        out = Path(SHOTS)
        os.makedirs(out, exist_ok=True)
        for scheme in ("light", "dark"):
            await self.page.emulate_media(color_scheme=scheme)
            await self.page.wait_for_timeout(250)
            await self.page.screenshot(path=str(out / f"{name}-{scheme}.png"))
        await self.page.emulate_media(color_scheme="light")
        await self.page.wait_for_timeout(400)  # charts are redrawn for the theme


async def breach_until_firing(agent: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    """Push web-1's CPU at 97.5 % until an alert fires."""

    async def breach() -> bool:
        r = await agent.post("/api/v1/metrics", json={
            "host": HOST, "labels": LABELS[HOST],
            "samples": [{"metric": "cpu.usage_percent", "value": 97.5,
                         "labels": {"cpu": "total"}}]},
            headers={"Idempotency-Key": uuid.uuid4().hex})
        assert r.status_code == 202, r.text
        found = (await admin.get("/api/v1/alerts", params={"state": "firing"})).json()
        return bool(found["items"])

    await wait_until(breach, "the analyzer to fire")


async def explain(ui: Page, stack: Pipeline) -> None:
    """After a failure: what a person would have seen, and what the services said."""
    print(f"page: {ui.page.url}\nbrowser errors: {ui.errors}")
    with contextlib.suppress(Exception):
        print((await ui.page.locator("main").inner_text())[:2000])
    for name in ("analyzer", "notifier"):
        print(f"--- {name}\n{stack.tail(name)}")


async def wait_until(check: Any, what: str, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)


async def test_a_person_runs_nazar_from_the_dashboard(stack: Pipeline) -> None:
    from playwright.async_api import async_playwright, expect

    assert stack.ingest is not None
    server = stack.ingest
    hook = stack.slack
    assert hook is not None
    admin = server.client()
    agent = server.client(server.ingest_key)
    await seed(agent)
    async with async_playwright() as pw:
        browser, ui = await Page.launch(pw, server.url)
        page = ui.page
        try:
            # --- sign in: a wrong key is refused, the admin key accepted
            await ui.goto("/")
            await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            await ui.shot("signin")
            await page.get_by_label("API key").fill("nzr_nope_wrong")
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("alert")).to_contain_text("not accepted")
            await page.get_by_label("API key").fill(server.admin_key)
            await page.get_by_role("button", name="Sign in").click()

            # --- the fleet: both hosts, with status and sparklines
            await expect(page.get_by_role("heading", name="Fleet")).to_be_visible()
            await expect(page.get_by_role("link", name=HOST, exact=True)).to_be_visible()
            await expect(page.get_by_role("link", name=OTHER, exact=True)).to_be_visible()
            await page.get_by_label("Search hosts").fill("web")
            await expect(page.get_by_role("link", name=OTHER, exact=True)).to_have_count(0)
            assert "q=web" in page.url
            await page.get_by_label("Search hosts").fill("")
            await expect(page.get_by_role("link", name=OTHER, exact=True)).to_be_visible()
            # sparklines come from the 1-minute rollup, refreshed every second here

            async def rolled_up() -> bool:
                body = (await admin.get("/api/v1/overview", params={"q": HOST})).json()
                return bool(body["hosts"][0]["spark"]["cpu"])

            await wait_until(rolled_up, "the 1-minute rollup")
            await page.reload()
            await expect(page.locator("svg.spark path").first).to_be_attached()
            await ui.shot("fleet")

            # --- a threshold rule: validation, backtest preview, save
            await page.get_by_role("link", name="Rules", exact=True).click()
            await page.get_by_role("link", name="New rule").click()
            await page.get_by_label("Name", exact=True).fill(RULE)
            metric = page.get_by_role("combobox", name="Metric")
            await metric.fill("usage_perc")
            await page.get_by_role("option", name="cpu.usage_percent").click()
            await page.get_by_role("button", name="Create rule").click()
            await expect(page.get_by_text("Fix the marked fields")).to_be_visible()
            value = page.get_by_label("Value", exact=True)
            await expect(value).to_have_attribute("aria-invalid", "true")
            await value.fill("90")
            await page.get_by_label("Series labels").fill("cpu=total")
            await page.get_by_label("Severity", exact=True).select_option("critical")
            await page.get_by_role("button", name="Preview (backtest)").click()
            summary = page.locator(".backtest [role=status]")
            await expect(summary).to_contain_text("would have fired 1 time")
            await expect(page.locator(".backtest .uplot")).to_have_count(1)
            await expect(page.locator(".backtest tbody tr").first).to_contain_text(HOST)
            await page.locator(".backtest").scroll_into_view_if_needed()
            await ui.shot("rule-editor")
            await page.get_by_role("button", name="Create rule").click()
            await expect(page.get_by_role("link", name=RULE)).to_be_visible()
            stored = (await admin.get(f"/api/v1/rules/{RULE}")).json()
            assert stored["spec"]["params"] == {"kind": "threshold", "comparator": ">",
                                                "value": 90.0, "recovery_value": None}
            assert stored["spec"]["match_series_labels"] == {"cpu": "total"}
            await ui.shot("rules")

            # --- breaching samples: the alert appears
            await asyncio.sleep(1.0)  # the analyzer reloads rules on NOTIFY

            await breach_until_firing(agent, admin)
            await ui.goto("/alerts")
            row = page.locator("tr", has=page.get_by_role("link", name=RULE))
            await expect(row).to_have_count(1)
            await expect(row.locator(".badge-firing")).to_be_visible()
            await expect(row).to_contain_text("cpu=total")
            await ui.shot("alerts")

            # --- acknowledge it
            await row.get_by_role("button", name=re.compile("^Acknowledge alert")).click()
            await expect(row).to_contain_text("acked")
            firing = await admin.get("/api/v1/alerts", params={"state": "firing"})
            alert = firing.json()["items"][0]
            assert alert["acked_at"] is not None and alert["acked_by"] == "test-admin"

            # --- the detail: series, expected threshold, transitions
            await row.get_by_role("link", name=RULE).click()
            await expect(page.get_by_role("heading", name=f"{RULE} on {HOST}")).to_be_visible()
            await expect(page.locator(".uplot")).to_have_count(1)
            await expect(page.get_by_role("cell", name="firing")).to_be_visible()
            await ui.shot("alert-detail")

            # --- silence it from the alert: matchers pre-filled
            await page.get_by_role("button", name="Silence…").click()
            await expect(page.get_by_role("heading", name="New silence")).to_be_visible()
            await expect(page.get_by_label("Label 1", exact=True)).to_have_value("alertname")
            await expect(page.get_by_label("Value 1", exact=True)).to_have_value(RULE)
            await expect(page.get_by_label("Label 2", exact=True)).to_have_value("host")
            await expect(page.get_by_label("Value 2", exact=True)).to_have_value(HOST)
            await page.get_by_label("Duration").fill("1h")
            await ui.shot("silences")
            await page.get_by_role("button", name="Create silence").click()
            await expect(page.get_by_text("Silence created")).to_be_visible()
            silences = (await admin.get("/api/v1/silences", params={"active": "true"})).json()
            assert len(silences) == 1
            matchers = {(m["name"], m["op"], m["value"]) for m in silences[0]["matchers"]}
            assert {("alertname", "=", RULE), ("host", "=", HOST)} <= matchers

            # --- a webhook channel, and a test message to the receiver
            await page.get_by_role("link", name="Channels", exact=True).click()
            await page.get_by_role("button", name="New channel").click()
            form = page.get_by_role("form", name="New channel")
            await form.get_by_label("Name", exact=True).fill("ops-hook")
            await form.get_by_label("URL", exact=True).fill("not a url")
            await form.get_by_role("button", name="Create channel").click()
            await expect(form.get_by_text("an http:// or https:// URL")).to_be_visible()
            await form.get_by_label("URL", exact=True).fill(f"{hook.url}/ops")
            await form.get_by_role("button", name="Create channel").click()
            await expect(page.get_by_role("rowheader", name="ops-hook")).to_be_visible()
            before = len(hook.requests)
            await page.get_by_role("button", name="Send a test through ops-hook").click()
            await expect(page.get_by_text("Test sent")).to_be_visible()
            assert [r for r in hook.requests[before:] if r.path == "/ops"], hook.requests
            await ui.shot("channels")

            # --- the host view: panels, zoom by dragging, same view after a reload
            await ui.goto(f"/hosts/{HOST}?from=now-3h&to=now")
            cpu = page.get_by_role("article", name="CPU")
            await expect(cpu.locator(".uplot")).to_have_count(1)
            network = page.get_by_role("article", name="Network")
            await expect(network.locator(".uplot")).to_have_count(1)
            await ui.shot("host")
            await page.wait_for_load_state("networkidle")  # markers and host details loaded
            over = cpu.locator(".u-over")
            box = await over.bounding_box()
            assert box is not None
            y = box["y"] + box["height"] / 2
            await page.mouse.move(box["x"] + box["width"] * 0.25, y)
            await page.mouse.down()
            await page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=8)
            await page.mouse.move(box["x"] + box["width"] * 0.75, y, steps=8)
            await page.mouse.up()
            await page.wait_for_url(re.compile(r"from=\d{4}-\d\d-\d\dT"))
            zoomed = page.url
            start = re.search(r"from=([^&]+)", zoomed)
            end = re.search(r"to=([^&]+)", zoomed)
            assert start and end
            span = _seconds(end.group(1)) - _seconds(start.group(1))
            assert 3600 <= span <= 6000, span  # about half of three hours
            await expect(cpu.locator(".uplot")).to_have_count(1)
            await page.reload()
            await expect(cpu.locator(".uplot")).to_have_count(1)
            assert page.url == zoomed
            # an absolute range is shown as "from - to" (an en dash)
            await expect(page.locator("#range-preset option").first).to_contain_text("\u2013")

            # --- explore: search, several hosts, the query as URL and curl
            await ui.goto("/explore")
            await page.get_by_role("combobox", name="Metric").fill("rx_bytes")
            await page.get_by_role("option", name="net.rx_bytes_per_sec").click()
            await expect(page.locator(".uplot")).to_have_count(1)
            await expect(page.locator(".legend-item")).to_have_count(2)
            await expect(page.get_by_label("API URL")).to_have_value(
                re.compile(r"/api/v1/query\?metric=net\.rx_bytes_per_sec"))
            await ui.shot("explore")

            # --- a phone: the navigation folds into a menu
            await page.set_viewport_size({"width": 390, "height": 844})
            await ui.goto("/")
            menu = page.get_by_role("button", name="Menu")
            await expect(menu).to_be_visible()
            await expect(page.get_by_role("link", name="Alerts", exact=True)).to_be_hidden()
            await menu.click()
            await expect(page.get_by_role("link", name="Alerts", exact=True)).to_be_visible()
            await menu.click()
            await ui.shot("phone")
            await page.set_viewport_size({"width": 1280, "height": 860})

            # --- the other pages render
            await ui.goto("/deliveries")
            await expect(page.get_by_text("nazar.notifier.alerts.dlq")).to_be_visible()
            await expect(page.get_by_role("cell", name="ops-hook").first).to_be_visible()
            await ui.shot("deliveries")
            await ui.goto("/keys")
            await expect(page.get_by_role("cell", name="test-admin")).to_be_visible()
            await ui.shot("keys")
            assert not ui.errors, ui.errors

            # --- a read key sees everything and may change nothing
            await page.get_by_role("button", name="Forget key").click()
            await page.get_by_label("API key").fill(server.read_key)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("heading", name="Fleet")).to_be_visible()
            await ui.goto("/alerts")
            row = page.locator("tr", has=page.get_by_role("link", name=RULE))
            silence = row.get_by_role("button", name=re.compile("^Silence alert"))
            await expect(silence).to_be_disabled()
            await expect(page.get_by_role("link", name="API keys")).to_have_count(0)
            await ui.goto("/rules")
            await expect(page.get_by_role("link", name="New rule")).to_have_count(0)
            await expect(page.get_by_role("checkbox", name=f"{RULE} enabled")).to_be_disabled()
            assert not ui.errors, ui.errors
        except BaseException:
            await explain(ui, stack)
            raise
        finally:
            await browser.close()
            await admin.aclose()
            await agent.aclose()


def _seconds(text: str) -> float:
    from datetime import datetime
    from urllib.parse import unquote

    return datetime.fromisoformat(unquote(text).replace("Z", "+00:00")).timestamp()
