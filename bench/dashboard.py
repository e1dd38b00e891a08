#!/usr/bin/env python3
"""Dashboard benchmark in a real browser (Debian's Chromium via Playwright).

1. First load: the built app (``dashboard/dist``) is opened as a person would
   open it; every JavaScript file the browser fetches is counted, raw and
   gzipped (the ``.gz`` copy ingest sends). Target: at most 300 KB gzipped.
2. Chart rendering: the dashboard's own Chart component draws 20 series of
   30 days at one-minute resolution (20 x 43,200 points), several times:
   from the data handed to the component to the chart drawn on its canvas,
   and to the next frame the browser painted with it (the target: under
   200 ms for the median of the latter).

Prints what it measured and on what machine, and exits 1 if a target is
missed. ``make bench-dashboard`` runs it after building the app.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gzip
import http.server
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "dashboard"
CHROMIUM = os.environ.get("NAZAR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
FIRST_LOAD_BUDGET = 300 * 1024
RENDER_BUDGET_MS = 200.0


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(folder: Path, spa: bool = False) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A static server on 127.0.0.1; ``spa`` answers unknown paths with index.html."""

    class Handler(Quiet):
        def send_head(self):  # type: ignore[no-untyped-def]
            if spa and not (folder / self.path.lstrip("/").split("?")[0]).exists():
                self.path = "/index.html"
            return super().send_head()

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def run(cmd: list[str], cwd: Path) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{cpu}, {os.cpu_count()} cores, load average {load}"


async def measure(args: argparse.Namespace, bench_dir: Path) -> int:
    from playwright.async_api import async_playwright

    dist = DASHBOARD / "dist"
    app_server, app_url = serve(dist, spa=True)
    bench_server, bench_url = serve(bench_dir)
    failed = 0
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        version = browser.version
        try:
            # --- first load
            page = await browser.new_page()
            scripts: list[str] = []
            page.on("response", lambda r: scripts.append(r.url)
                    if r.request.resource_type == "script" else None)
            await page.goto(app_url + "/", wait_until="networkidle")
            await page.get_by_role("heading", name="Sign in").wait_for()
            raw = gz = 0
            for url in scripts:
                path = dist / url.removeprefix(app_url + "/")
                body = path.read_bytes()
                raw += len(body)
                packed = path.with_name(path.name + ".gz")
                gz += packed.stat().st_size if packed.exists() else len(gzip.compress(body, 9))
            await page.close()
            ok = gz <= FIRST_LOAD_BUDGET
            failed += not ok
            print(f"first load: {len(scripts)} JavaScript file(s), {raw / 1024:.1f} KB raw, "
                  f"{gz / 1024:.1f} KB gzipped (target <= {FIRST_LOAD_BUDGET // 1024} KB): "
                  f"{'ok' if ok else 'OVER'}")

            # --- chart rendering
            page = await browser.new_page(viewport={"width": 1440, "height": 900})
            await page.goto(bench_url + "/index.html")
            await page.wait_for_function("typeof window.runBench === 'function'")
            for series, points in ((1, args.points), (args.series, args.points)):
                await page.evaluate("([s, p]) => window.runBench(s, p)", [series, points])  # warm
                runs = [
                    await page.evaluate("([s, p]) => window.runBench(s, p)", [series, points])
                    for _ in range(args.runs)
                ]
                drawn = [r["drawn"] for r in runs]
                painted = [r["painted"] for r in runs]
                median = statistics.median(painted)
                line = (f"chart: {series} series x {points:,} points = {series * points:,}: "
                        f"drawn in median {statistics.median(drawn):.0f} ms, painted in median "
                        f"{median:.0f} ms (min {min(painted):.0f}, max {max(painted):.0f}) over "
                        f"{args.runs} runs")
                if series == args.series:
                    ok = median < RENDER_BUDGET_MS
                    failed += not ok
                    line += f"; target < {RENDER_BUDGET_MS:.0f} ms: {'ok' if ok else 'OVER'}"
                print(line)
            await page.close()
        finally:
            await browser.close()
            app_server.shutdown()
            bench_server.shutdown()
    print(f"on: Chromium {version}, {machine()}")
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=20)
    ap.add_argument("--points", type=int, default=30 * 24 * 60, help="per series (30 days)")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit("Chromium is needed (Debian: apt-get install chromium)")
    run([str(ROOT / "scripts" / "ensure-dashboard.sh")], ROOT)
    with tempfile.TemporaryDirectory(prefix="nazar-bench-ui-") as tmp:
        run(["npx", "--no-install", "vite", "build", "--logLevel", "error", "--config",
             "bench/vite.config.ts", "--outDir", tmp], DASHBOARD)
        return asyncio.run(measure(args, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
