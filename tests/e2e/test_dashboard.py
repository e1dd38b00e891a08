"""The dashboard in a real browser: headless Chromium driven over the Chrome
DevTools Protocol (a small client on aiohttp's websocket), against a real
ingest server.

Samples of two hosts are pushed through the API; the test then enters a wrong
and a right key, reads the hosts table, opens a host's chart and checks the
drawn path point by point, switches metric and host (by keyboard), opens the
alerts view, takes the API offline and finally forgets the key. Screenshots
are written to the test's temporary directory.

Skipped when no Chromium binary is installed (Debian: ``apt-get install
chromium``; ``make test-deps`` does it)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
import pytest

from tests.conftest import IngestServer

pytestmark = pytest.mark.slow

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM = next((path for name in BROWSERS if (path := shutil.which(name))), None)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--window-size=1280,1000",
    "--remote-debugging-port=0",
)
SAMPLES = 30


class BrowserError(AssertionError):
    pass


def launch(binary: str, profile: Path) -> subprocess.Popen[bytes]:
    """Chromium with a fresh profile, in a process group of its own (the
    launcher script starts helper processes)."""
    profile.mkdir(parents=True, exist_ok=True)
    with (profile / "chromium.log").open("wb") as log:
        return subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


class Browser:
    """One headless Chromium page driven over the DevTools protocol."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.binary = binary
        self.profile = profile
        self.proc: subprocess.Popen[bytes] | None = None
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.next_id = 0
        self.errors: list[str] = []  # uncaught exceptions, console errors, CSP violations

    async def start(self) -> None:
        self.proc = launch(self.binary, self.profile)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BrowserError(f"chromium did not start: {self.log_tail()}")
            await asyncio.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        async with httpx.AsyncClient() as client:
            targets = (await client.get(f"http://127.0.0.1:{port}/json/list")).json()
        page = next(t for t in targets if t["type"] == "page")
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        self.reader = asyncio.create_task(self._read())
        for domain in ("Page", "Runtime", "Log", "Network"):
            await self.send(f"{domain}.enable")

    def log_tail(self) -> str:
        path = self.profile / "chromium.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    async def close(self) -> None:
        if self.reader:
            self.reader.cancel()
        if self.ws:
            await self.ws.close()
        if self.session:
            await self.session.close()
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data:
                future = self.pending.pop(data["id"], None)
                if future and not future.done():
                    future.set_result(data)
                continue
            method, params = data.get("method"), data.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                self.errors.append(details.get("exception", {}).get("description", str(details)))
            elif method == "Runtime.consoleAPICalled" and params["type"] == "error":
                self.errors.append(" ".join(str(a.get("value")) for a in params["args"]))
            elif method == "Log.entryAdded":
                entry = params["entry"]
                # Failed requests (the 401 of a wrong key, the offline test) are expected.
                if entry["level"] == "error" and entry["source"] != "network":
                    self.errors.append(f"{entry['source']}: {entry['text']}")

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        assert self.ws is not None
        self.next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        await self.ws.send_str(json.dumps({"id": self.next_id, "method": method, "params": params}))
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return dict(answer["result"])

    async def js(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, what: str, timeout: float = 15.0) -> Any:
        """Polls a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = await self.js(expression)
            if value:
                return value
            await asyncio.sleep(0.05)
        raise BrowserError(f"timed out waiting for {what}; last value {value!r}; {self.errors}")

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'", f"{url} to load")

    async def click(self, selector: str, text: str | None = None) -> None:
        """A real mouse click at the centre of the (first) element matching the
        selector (and having this text)."""
        box = await self.wait_for(
            f"""(() => {{ const e = [...document.querySelectorAll({json.dumps(selector)})]
                .find((e) => {json.dumps(text)} === null || e.textContent === {json.dumps(text)});
                if (!e || !e.offsetParent) return null;
                e.scrollIntoView({{block: 'center'}});
                const r = e.getBoundingClientRect();
                return {{x: r.x + r.width / 2, y: r.y + r.height / 2}}; }})()""",
            f"{selector} to be visible",
        )
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box["x"],
                y=box["y"],
                button="left",
                clickCount=1,
            )

    async def type(self, selector: str, text: str) -> None:
        await self.js(f"document.querySelector({json.dumps(selector)}).focus()")
        await self.send("Input.insertText", text=text)

    async def press(self, key: str) -> None:
        codes = {"Enter": (13, "\r"), "Tab": (9, "")}
        vk, text = codes[key]
        await self.send(
            "Input.dispatchKeyEvent",
            type="keyDown",
            key=key,
            code=key,
            windowsVirtualKeyCode=vk,
            text=text,
        )
        await self.send(
            "Input.dispatchKeyEvent", type="keyUp", key=key, code=key, windowsVirtualKeyCode=vk
        )

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))


def path_points(d: str) -> list[tuple[str, float, float]]:
    return [(c, float(x), float(y)) for c, x, y in re.findall(r"([ML])([\d.]+),([\d.]+)", d)]


async def push(server: IngestServer, web: str, db: str) -> None:
    """30 samples per series over the last 30 minutes: web has one CPU series
    (its latest sample current) and a memory series, db two CPU series (its
    latest sample 5 minutes old: stale)."""
    now = time.time()
    web_last = now - 2
    web_samples = [
        {
            "metric": "cpu.usage_percent",
            "value": 20 + 2 * i,
            "timestamp": web_last - 60 * (SAMPLES - 1 - i),
            "labels": {"cpu": "total"},
        }
        for i in range(SAMPLES)
    ] + [
        {
            "metric": "mem.used_bytes",
            "value": 2**31 + i * 2**20,
            "timestamp": web_last - 60 * (SAMPLES - 1 - i),
        }
        for i in range(SAMPLES)
    ]
    db_samples = [
        {
            "metric": "cpu.usage_percent",
            "value": 50 + i % 5 + 10 * cpu,
            "timestamp": now - 300 - 50 * (SAMPLES - 1 - i),
            "labels": {"cpu": str(cpu)},
        }
        for cpu in (0, 1)
        for i in range(SAMPLES)
    ]
    async with server.client(server.ingest_key) as client:
        for host, samples, role in ((web, web_samples, "web"), (db, db_samples, "db")):
            r = await client.post(
                "/api/v1/metrics",
                json={"host": host, "labels": {"env": "e2e", "role": role}, "samples": samples},
            )
            assert r.status_code == 202, r.text
    async with server.client(server.read_key) as client:
        deadline = time.monotonic() + 20
        while True:
            hosts = {h["host"]: h for h in (await client.get("/api/v1/hosts")).json()["hosts"]}
            if web in hosts and db in hosts:
                break
            assert time.monotonic() < deadline, f"hosts not recorded: {sorted(hosts)}"
            await asyncio.sleep(0.2)


async def add_alert(server: IngestServer, host: str) -> int | None:
    """A firing alert for the host with one transition, when the alerts table
    exists; returns its id."""
    conn = await asyncpg.connect(server.database_url)
    try:
        if await conn.fetchval("SELECT to_regclass('alerts')") is None:
            return None
        alert_id: int = await conn.fetchval(
            "INSERT INTO alerts (fingerprint, rule_id, rule_name, kind, subject, host, metric, "
            "severity, state, started_at, fired_at, value, expected_high, explanation) "
            "VALUES ($1, 1, 'cpu-high', 'threshold', $2, $2, 'cpu.usage_percent', 'critical', "
            "'firing', now() - interval '3 minutes', now() - interval '2 minutes', 78, 70, "
            "'cpu.usage_percent 78 > 70 for 2 minutes') RETURNING id",
            f"e2e-{host}",
            host,
        )
        await conn.execute(
            "INSERT INTO alert_transitions (alert_id, seq, event_id, from_state, to_state, at, "
            "value, explanation) VALUES ($1, 1, gen_random_uuid(), 'pending', 'firing', "
            "now() - interval '2 minutes', 78, 'above 70 for 2 minutes')",
            alert_id,
        )
    finally:
        await conn.close()
    return alert_id


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (Debian package: chromium)")
async def test_dashboard_in_a_browser(ingest_server: IngestServer, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    token = secrets.token_hex(3)
    web, db = f"dash-web-{token}", f"dash-db-{token}"
    await push(ingest_server, web, db)
    alert_id = await add_alert(ingest_server, web)

    browser = Browser(CHROMIUM, tmp_path / "profile")
    try:
        await browser.start()
        await browser.goto(ingest_server.url + "/")

        # Without a key: a prompt, no data, no error.
        prompt = await browser.wait_for(
            "!document.querySelector('#hosts-empty').hidden && "
            "document.querySelector('#hosts-empty').textContent",
            "the key prompt",
        )
        assert "API key" in prompt
        assert await browser.js("document.querySelector('#message').hidden")

        # A wrong key: the 401 is explained.
        await browser.type("#key", "nzr_wrong_key0000")
        await browser.press("Enter")
        error = await browser.wait_for(
            "!document.querySelector('#message').hidden && "
            "document.querySelector('#message').textContent",
            "the 401 message",
        )
        assert "401" in error and "rejected" in error, error
        await browser.screenshot(tmp_path / "wrong-key.png")

        # The read key: both hosts, with their status; the key is stored, the field cleared.
        await browser.type("#key", ingest_server.read_key)
        await browser.click("#key-form button[type=submit]")
        rows = await browser.wait_for(
            f"""(() => {{
                const rows = Object.fromEntries([...document.querySelectorAll('#hosts tbody tr')]
                    .map((r) => [r.cells[0].textContent, r.cells[1].textContent]));
                return {json.dumps(web)} in rows && {json.dumps(db)} in rows ? rows : null;
            }})()""",
            "both hosts in the table",
        )
        assert rows[web] == "up" and rows[db] == "stale", rows
        assert await browser.js("document.querySelector('#message').hidden")
        assert await browser.js("localStorage.getItem('nazar.key')") == ingest_server.read_key
        assert await browser.js("document.querySelector('#key').value") == ""

        # A host: its metrics with units, and a path with one point per sample.
        await browser.click("#hosts tbody th button", web)
        options = await browser.wait_for(
            "[...document.querySelectorAll('#metric option')].map((o) => [o.value, o.text])",
            "the metric options",
        )
        assert dict(options) == {
            "cpu.usage_percent": "cpu.usage_percent (%)",
            "mem.used_bytes": "mem.used_bytes (bytes)",
        }
        d = await browser.wait_for(
            "document.querySelector('#chart svg path.line')?.getAttribute('d')", "the chart path"
        )
        points = path_points(d)
        assert len(points) == SAMPLES, d
        assert [c for c, _, _ in points] == ["M"] + ["L"] * (SAMPLES - 1)
        xs, ys = [x for _, x, _ in points], [y for _, _, y in points]
        assert all(a < b for a, b in itertools.pairwise(xs)), "time must go right"
        assert all(a > b for a, b in itertools.pairwise(ys)), "rising values must go up"
        assert await browser.js("document.querySelector('#host-name').textContent") == web
        assert await browser.js("location.hash") == f"#hosts/{web}"
        times = await browser.js(
            "[...document.querySelectorAll('#chart text.time')].map((t) => t.textContent)"
        )
        assert len(times) >= 4 and all(re.fullmatch(r"\d\d:\d\d", t) for t in times), times
        summary = await browser.js("document.querySelector('#chart-summary').textContent")
        assert f"{SAMPLES} points" in summary and "Last 78%" in summary, summary
        await browser.screenshot(tmp_path / "host.png")

        # Another metric: its unit on the value axis.
        await browser.js(
            "const s = document.querySelector('#metric'); s.value = 'mem.used_bytes';"
            "s.dispatchEvent(new Event('change'))"
        )
        labels = await browser.wait_for(
            """(() => { const t = [...document.querySelectorAll('#chart text:not(.time)')]
                .map((e) => e.textContent); return t.some((x) => x.endsWith('GiB')) && t; })()""",
            "GiB on the value axis",
        )
        assert labels
        assert await browser.js("location.hash") == f"#hosts/{web}/mem.used_bytes"

        # The other host, by keyboard: two series, two paths and a legend.
        await browser.js(
            f"[...document.querySelectorAll('#hosts tbody th button')]"
            f".find((b) => b.textContent === {json.dumps(db)}).focus()"
        )
        await browser.press("Enter")
        await browser.wait_for(
            f"document.querySelector('#host-name').textContent === {json.dumps(db)} && "
            "document.querySelector('#metric').value === 'cpu.usage_percent' && "
            f"document.querySelector('#chart svg path.line')?.getAttribute('d')",
            "the chart of the second host",
        )
        paths = await browser.js(
            "[...document.querySelectorAll('#chart svg path.line')].map((p) => p.getAttribute('d'))"
        )
        assert [len(path_points(d)) for d in paths] == [SAMPLES, SAMPLES], paths
        legend = await browser.js(
            "[...document.querySelectorAll('#legend li')].map((li) => li.textContent)"
        )
        assert legend == ["cpu=0, env=e2e, role=db", "cpu=1, env=e2e, role=db"], legend
        await browser.screenshot(tmp_path / "host-two-series.png")

        # Alerts: the inserted alert, or a calm empty state where there are none.
        await browser.click("nav a[data-view=alerts]")
        await browser.wait_for(
            "!document.querySelector('#alerts-view').hidden && "
            "document.querySelector('#hosts-view').hidden",
            "the alerts view",
        )
        if alert_id is not None:
            cells = await browser.wait_for(
                f"""[...document.querySelectorAll('#alerts tbody tr')]
                    .map((r) => [...r.cells].map((c) => c.textContent))
                    .find((c) => c[3] === {json.dumps(web)})""",
                "the alert row",
            )
            assert cells[0] == "firing" and cells[2] == "cpu-high", cells
            assert cells[6] == "78%", cells
            # Its details, from the row's link and from a notification's link (#/alerts/<id>).
            for how in ("link", "notification"):
                if how == "link":
                    await browser.click("#alerts tbody a", "cpu-high")
                else:
                    await browser.goto(f"{ingest_server.url}/#/alerts/{alert_id}")
                fields = await browser.wait_for(
                    f"""document.querySelector('#alert-name').textContent ===
                        'Alert {alert_id}: cpu-high' && Object.fromEntries(
                        [...document.querySelectorAll('#alert-fields dt')]
                        .map((dt) => [dt.textContent, dt.nextElementSibling.textContent]))""",
                    f"the details of alert {alert_id} ({how})",
                )
                assert fields["Host"] == web and fields["Value"] == "78%", fields
                assert fields["Expected"] == "at most 70%", fields
                transitions = await browser.wait_for(
                    "[...document.querySelectorAll('#transitions tbody tr')]"
                    ".map((r) => [...r.cells].slice(1).map((c) => c.textContent))",
                    "the transitions",
                )
                assert transitions == [["pending", "firing", "78%", "above 70 for 2 minutes"]]
        else:
            await browser.wait_for(
                "!document.querySelector('#alerts-empty').hidden", "the alerts empty state"
            )
        assert await browser.js("document.querySelector('#message').hidden")
        await browser.screenshot(tmp_path / "alerts.png")

        # The API unreachable: explained, not a blank page.
        await browser.send(
            "Network.emulateNetworkConditions",
            offline=True,
            latency=0,
            downloadThroughput=-1,
            uploadThroughput=-1,
        )
        await browser.click("#reload")
        error = await browser.wait_for(
            "!document.querySelector('#message').hidden && "
            "document.querySelector('#message').textContent",
            "the unreachable message",
        )
        assert "Cannot reach" in error, error
        await browser.send(
            "Network.emulateNetworkConditions",
            offline=False,
            latency=0,
            downloadThroughput=-1,
            uploadThroughput=-1,
        )

        # A rejected key does not leave the previous key's data on screen.
        await browser.type("#key", "nzr_wrong_key0000")
        await browser.press("Enter")
        await browser.wait_for(
            "document.querySelector('#message').textContent.includes('401') && "
            "document.querySelector('#alerts').hidden && "
            "!document.querySelector('#alerts tbody tr')",
            "the data of the rejected key to be cleared",
        )
        await browser.type("#key", ingest_server.read_key)
        await browser.press("Enter")
        await browser.wait_for(
            "document.querySelector('#message').hidden && "
            "!!document.querySelector('#alerts tbody tr, #alerts-empty:not([hidden])')",
            "the alerts of the read key",
        )

        # Forgetting the key removes it and the data.
        await browser.click("#forget")
        await browser.wait_for(
            "!document.querySelector('#alerts-empty').hidden && "
            "document.querySelector('#alerts').hidden",
            "the data to be cleared",
        )
        assert await browser.js("localStorage.getItem('nazar.key')") is None
        assert await browser.js("document.querySelector('#message').hidden")
        assert browser.errors == []
        print(f"screenshots: {tmp_path / 'host.png'} {tmp_path / 'alerts.png'}")
    finally:
        await browser.close()
