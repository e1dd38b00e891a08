"""``GET /api/v1/forecast`` against a real ingest server, analyzer (which
computes forecasts) and database: series with a known crossing time are
written (weeks of history), rolled up, and forecast through the API."""

from __future__ import annotations

import math
import random
import time
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import IngestServer
from tests.integration.analyzer.conftest import Env
from tests.integration.query.test_query_api import Row, insert_direct

DAY = 86400.0
NOW = time.time()
START = NOW - 14 * DAY
STEP = 600.0  # a sample every 10 minutes
#: disk.used_percent on lin-1: 30 % fourteen days ago, +3 % a day: 90 % at
TRUE_CROSSING = START + (90.0 - 30.0) / 3.0 * DAY


def _disk_lin(t: float) -> float:
    return 30.0 + 3.0 * (t - START) / DAY


def _disk_seasonal(t: float) -> float:
    return 20.0 + 2.0 * (t - START) / DAY + 4.0 * math.sin(2 * math.pi * t / DAY)


@pytest.fixture(scope="module")
async def server(env: Env) -> IngestServer:
    """The module's ingest server (forwarding forecasts to its analyzer),
    with two weeks of history written and rolled up."""
    rng = random.Random(7)
    rows: list[Row] = []
    t = START
    while t < NOW - 60:
        rows.append(("lin-1", "disk.used_percent", {"mount": "/"}, t, _disk_lin(t)))
        noisy = _disk_seasonal(t) + rng.gauss(0, 1.0) + (25.0 if rng.random() < 0.003 else 0.0)
        rows.append(("seas-1", "disk.used_percent", {"mount": "/"}, t, noisy))
        rows.append(("flat-1", "disk.used_percent", {"mount": "/"}, t,
                     50.0 + rng.gauss(0, 0.5)))
        rows.append(("lin-1", "mem.free_percent", {}, t, 80.0 - 2.0 * (t - START) / DAY))
        t += STEP
    rows.append(("new-1", "disk.used_percent", {"mount": "/"}, NOW - 120, 10.0))
    await insert_direct(env.database_url, rows)
    return env.ingest


async def forecast(srv: IngestServer, **params: Any) -> httpx.Response:
    async with srv.client(srv.read_key) as client:
        return await client.get("/api/v1/forecast", params=params)


async def test_linear_disk_crossing_within_5_percent(server: IngestServer) -> None:
    r = await forecast(server, metric="disk.used_percent", host="lin-1", threshold=90,
                       horizon="30d")
    assert r.status_code == 200, r.text
    body = r.json()
    [f] = body["forecasts"]
    assert f["status"] == "crossing" and f["within_horizon"] is True
    now = body["now_ts"]
    err = abs(f["crossing_ts"] - TRUE_CROSSING) / (TRUE_CROSSING - now)
    assert err < 0.05, (f["crossing_ts"] - TRUE_CROSSING) / 3600
    assert f["trend"]["slope_per_day"] == pytest.approx(3.0, rel=0.01)
    iv = f["interval"]
    assert iv["earliest_ts"] <= f["crossing_ts"] <= iv["latest_ts"]
    assert f["summary"].startswith("disk.used_percent on lin-1 is expected to reach 90 in ")
    assert f["labels"] == {"mount": "/"} and f["history"]["source"] == "1h"
    assert f["history"]["points"] >= 13 * 24
    # the projection runs from now past the crossing, for the chart
    proj = f["projection"]
    assert proj[0][0] == pytest.approx(now) and proj[-1][0] > f["crossing_ts"]
    assert proj[-1][1] > 90


async def test_noisy_seasonal_series(server: IngestServer) -> None:
    r = await forecast(server, metric="disk.used_percent", host="seas-1", threshold=90,
                       horizon="60d")
    [f] = r.json()["forecasts"]
    now = r.json()["now_ts"]
    # the first time the noiseless series reaches 90 (a daily peak)
    t = now
    while _disk_seasonal(t) < 90:
        t += 60
    assert f["status"] == "crossing"
    assert abs(f["crossing_ts"] - t) / (t - now) < 0.05, (f["crossing_ts"] - t) / 3600
    assert f["trend"]["daily_amplitude"] == pytest.approx(8.0, rel=0.25)


async def test_no_crossing_below_direction_and_fleet(server: IngestServer) -> None:
    r = await forecast(server, metric="disk.used_percent", host="flat-1", threshold=90)
    [f] = r.json()["forecasts"]
    assert f["status"] == "not_crossing" and f["crossing_at"] is None
    assert f["within_horizon"] is False and "is not expected to reach 90" in f["summary"]

    r = await forecast(server, metric="mem.free_percent", host="lin-1", threshold=10,
                       direction="below", horizon="60d")
    [f] = r.json()["forecasts"]
    true = START + 35 * DAY
    assert f["status"] == "crossing"
    assert abs(f["crossing_ts"] - true) / (true - r.json()["now_ts"]) < 0.05

    # the fleet: every disk, soonest first; `within` keeps those due in the horizon
    r = await forecast(server, metric="disk.used_percent", threshold=90, horizon="30d")
    hosts = [(f["host"], f["status"]) for f in r.json()["forecasts"]]
    # the fleet leaves the projected lines out unless asked
    assert all(f["projection"] is None for f in r.json()["forecasts"])
    r2 = await forecast(server, metric="disk.used_percent", threshold=90, projection="true")
    assert all(f["projection"] for f in r2.json()["forecasts"][:3])
    assert hosts == [("lin-1", "crossing"), ("seas-1", "crossing"),
                     ("flat-1", "not_crossing"), ("new-1", "insufficient_data")]
    r = await forecast(server, metric="disk.used_percent", threshold=90, horizon="10d",
                       within="true")
    assert [f["host"] for f in r.json()["forecasts"]] == ["lin-1"]
    r = await forecast(server, metric="disk.used_percent", threshold=90, labels="mount=/x")
    assert r.json()["forecasts"] == []


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"threshold": "90"}, "metric is required"),
        ({"metric": "disk.used_percent"}, "threshold is required"),
        ({"metric": "disk.used_percent", "threshold": "nan"}, "finite"),
        ({"metric": "disk.used_percent", "threshold": "x"}, "threshold"),
        ({"metric": "disk used", "threshold": "90"}, "not a valid metric name"),
        ({"metric": "d", "threshold": "90", "horizon": "soon"}, "horizon"),
        ({"metric": "d", "threshold": "90", "lookback": "1h"}, "lookback"),
        ({"metric": "d", "threshold": "90", "direction": "up"}, "direction"),
        ({"metric": "d", "threshold": "90", "host": "bad host!"}, "host"),
    ],
)
async def test_bad_parameters_are_400(server: IngestServer, params: dict[str, str],
                                      words: str) -> None:
    r = await forecast(server, **params)
    assert r.status_code in (400, 422), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert words in r.text


async def test_needs_a_read_key(server: IngestServer) -> None:
    async with server.client(server.ingest_key) as client:
        r = await client.get("/api/v1/forecast", params={"metric": "d", "threshold": 1})
    assert r.status_code == 403
    async with httpx.AsyncClient(base_url=server.url) as client:
        r = await client.get("/api/v1/forecast", params={"metric": "d", "threshold": 1})
    assert r.status_code == 401


async def test_cli_forecast(server: IngestServer) -> None:
    import asyncio

    from typer.testing import CliRunner

    from nazar_cli.main import app

    env = {"NAZAR_API_URL": server.url, "NAZAR_API_KEY": server.read_key}

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return asyncio.to_thread(CliRunner().invoke, app, ["forecast", *args], env=env)

    result = await invoke("disk.used_percent", "--threshold", "90", "--horizon", "10d",
                          "--within", "--fail-within")
    assert result.exit_code == 3, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("lin-1\tmount=/\tdisk.used_percent on lin-1 is expected to reach 90 in ")
    result = await invoke("disk.used_percent", "--threshold", "90", "--host", "flat-1",
                          "--fail-within", "--output", "json")
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output)["forecasts"][0]["status"] == "not_crossing"
    result = await invoke("disk.used_percent", "--threshold", "90", "--horizon", "soon")
    assert result.exit_code == 1 and "horizon" in result.output


async def test_analyzer_unreachable_is_503(env: Env) -> None:
    from tests.conftest import free_port, start_ingest

    lonely = await start_ingest(env.database_url, env.amqp_url,
                                analyzer_url=f"http://127.0.0.1:{free_port()}")
    try:
        async with lonely.client(lonely.read_key) as client:
            r = await client.get("/api/v1/forecast",
                                 params={"metric": "disk.used_percent", "threshold": 90})
        assert r.status_code == 503 and "analyzer is unreachable" in r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    finally:
        lonely.thread.stop()
