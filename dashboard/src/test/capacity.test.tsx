// The Capacity page: the fleet's forecasts, soonest first, and one series'
// chart with its projected trend, threshold and expected crossing.

import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { sample } from "./forecastSample";
import type { ForecastResult } from "../lib/types";
import { forecastLink } from "../pages/AlertDetail";
import Capacity from "../pages/Capacity";
import { currentLocation, READER, renderPage, stubFetch } from "./render";

const plots: { opts: { series: { label?: string; dash?: number[] }[] } }[] = [];

vi.mock("uplot", () => {
  class FakePlot {
    static pxRatio = 1;
    static tzDate = (d: Date) => d;
    opts: unknown;
    width = 600;
    constructor(opts: { series: { label?: string }[] }) {
      this.opts = opts;
      plots.push(this as never);
    }
    setSeries() {}
    destroy() {}
    redraw() {}
    setSize() {}
    setSelect() {}
  }
  return { default: FakePlot };
});

beforeEach(() => vi.stubGlobal("ResizeObserver", class { observe() {} disconnect() {} }));
afterEach(() => {
  vi.unstubAllGlobals();
  plots.length = 0;
});

const NOW = 1_800_000_000;

function result(forecasts = [
  sample(),
  sample({ host: "db-1", status: "not_crossing", crossing_ts: null, crossing_at: null, eta_seconds: null, within_horizon: false, reason: "the trend is flat (0 per day)", summary: "disk.used_percent on db-1 is not expected to reach 90" }),
  sample({ host: "new-1", status: "insufficient_data", crossing_ts: null, crossing_at: null, eta_seconds: null, within_horizon: false, reason: "3 hourly points, at least 12 needed" }),
]): ForecastResult {
  return {
    metric: "disk.used_percent", threshold: 90, direction: "above", horizon_seconds: 7 * 86400, lookback_seconds: 14 * 86400,
    now: "", now_ts: NOW, forecasts, truncated: false,
  };
}

describe("capacity", () => {
  it("lists the fleet soonest first and charts one series with its forecast", async () => {
    const calls = stubFetch({
      "/api/v1/auth/whoami": () => READER,
      "/api/v1/forecast": (url) => (url.searchParams.get("host") ? result([sample()]) : result()),
      "/api/v1/query": () => ({
        series: [{ host: "web-1", metric: "disk.used_percent", labels: { mount: "/" }, points: [[NOW - 7200, 74], [NOW - 3600, 75]] }],
        step: 3600, source: "1h", agg: "avg", start: NOW - 14 * 86400, end: NOW,
      }),
    });
    renderPage(<Capacity />, { route: "/capacity?metric=disk.used_percent&threshold=90&horizon=7d" });
    expect(await screen.findByText("1 of 3 series expected to reach 90 within 7 days.")).toBeInTheDocument();
    const table = screen.getByRole("table");
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows.map((r) => within(r).getByRole("rowheader").textContent)).toEqual(["web-1 host", "db-1 host", "new-1 host"]);
    expect(rows[0]).toHaveTextContent("in 6.0 days");
    expect(rows[0]).toHaveTextContent("5.0–7.0 days");
    expect(rows[1]).toHaveTextContent("the trend is flat");
    expect(rows[2]).toHaveTextContent("too little history");

    await userEvent.setup().click(within(rows[0]).getByRole("button", { name: "Chart web-1 mount=/" }));
    expect(currentLocation()).toContain("host=web-1");
    expect(currentLocation()).toContain("label=mount%3D%2F");
    expect(await screen.findByRole("figure", { name: "Forecast of disk.used_percent on web-1" })).toBeInTheDocument();
    expect(screen.getByText(/is expected to reach 90 in 6.0 days ± 1.0/)).toBeInTheDocument();
    const labels = plots[plots.length - 1].opts.series.map((s) => s.label);
    expect(labels).toEqual([undefined, "web-1 (hourly)", "projected trend"]);
    expect(plots[plots.length - 1].opts.series[2].dash).toEqual([6, 4]);
    expect(screen.getByText("1 marker")).toBeInTheDocument();
    expect(screen.getByText(/expected to reach 90 \(between/)).toBeInTheDocument();
    const forecastCalls = calls.requests.filter((r) => r.url.pathname === "/api/v1/forecast");
    expect(forecastCalls.some((r) => r.url.searchParams.get("host") === "web-1" && r.url.searchParams.get("labels") === "mount=/")).toBe(true);
    const query = calls.requests.find((r) => r.url.pathname === "/api/v1/query");
    expect(query?.url.searchParams.get("step")).toBe("1h");
    expect(screen.getByRole("link", { name: "Alert on it" })).toHaveAttribute("href", "/rules/new?kind=forecast&metric=disk.used_percent&value=90");
  });

  it("says so when nothing is due", async () => {
    stubFetch({ "/api/v1/auth/whoami": () => READER, "/api/v1/forecast": () => result([]) });
    renderPage(<Capacity />, { route: "/capacity?metric=disk.used_percent&threshold=90&horizon=7d&within=1" });
    expect(await screen.findByText("No series of disk.used_percent is expected to cross 90 within 7d.")).toBeInTheDocument();
  });

  it("links a forecast alert to its series' forecast", () => {
    const a = {
      metric: "disk.used_percent", host: "db-1", labels: { mount: "/var", team: "ops" },
      expected: { low: null, high: 90, centre: 90 },
    } as unknown as Parameters<typeof forecastLink>[0];
    expect(forecastLink(a, { team: "ops" }).toString()).toBe(
      "metric=disk.used_percent&threshold=90&direction=above&host=db-1&label=mount%3D%2Fvar",
    );
  });
});
