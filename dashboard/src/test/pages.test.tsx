// The pages as a person uses them: sign-in, the fleet table, the rule form,
// alert actions by scope, silences pre-filled from an alert.

import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "../App";
import Alerts from "../pages/Alerts";
import { Fleet } from "../pages/Fleet";
import RuleEditor, { firingRegions } from "../pages/RuleEditor";
import Silences from "../pages/Silences";
import type { Alert, Overview } from "../lib/types";
import { ADMIN, currentLocation, problem, READER, renderPage, stubFetch } from "./render";

afterEach(() => vi.unstubAllGlobals());

const overview = (hosts: string[]): Overview => ({
  total: hosts.length,
  offset: 0,
  limit: 50,
  counts: { up: hosts.length - 1, stale: 0, down: 1 },
  spark: { start: 0, end: 3600, step: 60 },
  hosts: hosts.map((host, i) => ({
    host,
    labels: { role: "web" },
    first_seen: "2026-01-01T00:00:00Z",
    last_seen: "2026-01-01T00:00:00Z",
    last_sample: new Date().toISOString(),
    status: i === hosts.length - 1 ? "down" : "up",
    open_alerts: i,
    firing_alerts: 0,
    latest: { cpu: 12.5 + i, mem: 40, disk: null },
    spark: { cpu: [[0, 10], [60, 20]], mem: [], disk: [] },
  })),
});

const alert: Alert = {
  id: 7, fingerprint: "f", rule_id: 1, rule_name: "cpu-high", kind: "threshold", host: "web-1", series_id: 3,
  metric: "cpu.usage_percent", labels: { cpu: "total", team: "ops" }, annotations: {}, channels: [], severity: "critical",
  state: "firing", started_at: "2026-01-01T00:00:00Z", fired_at: "2026-01-01T00:00:00Z", resolved_at: null, value: 97.5,
  expected: { low: null, high: null, centre: null }, score: null, explanation: "97.5 > 90", contributors: [],
  acked_at: null, acked_by: null, ack_comment: null, updated_at: "2026-01-01T00:00:00Z",
};

describe("sign-in", () => {
  it("refuses an unknown key and keeps a good one", async () => {
    stubFetch({
      "/api/v1/auth/whoami": (_u, init) =>
        (init.headers as Record<string, string>).Authorization === "Bearer nzr_good_1" ? ADMIN : problem(401, "unknown or revoked API key"),
      "/api/v1/overview": () => overview(["web-1"]),
    });
    renderPage(<App />, { path: "*", key: "" });
    const user = userEvent.setup();
    await user.type(screen.getByLabelText("API key"), "nzr_bad_1");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("not accepted");
    await user.clear(screen.getByLabelText("API key"));
    await user.type(screen.getByLabelText("API key"), "nzr_good_1");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("heading", { name: "Fleet" })).toBeInTheDocument();
    expect(localStorage.getItem("nazar.key")).toBe("nzr_good_1");
    expect(screen.getByRole("link", { name: "API keys" })).toBeInTheDocument();
  });

  it("hides what a read key may not do", async () => {
    stubFetch({ "/api/v1/auth/whoami": () => READER, "/api/v1/overview": () => overview(["web-1"]) });
    renderPage(<App />, { path: "*" });
    expect(await screen.findByRole("heading", { name: "Fleet" })).toBeInTheDocument();
    expect(screen.queryByRole("link", { name: "API keys" })).toBeNull();
  });
});

describe("fleet", () => {
  it("shows hosts, sorts and filters through the URL", async () => {
    const calls = stubFetch({ "/api/v1/auth/whoami": () => READER, "/api/v1/overview": () => overview(["web-1", "web-2", "db-1"]) });
    renderPage(<Fleet />);
    const table = await screen.findByRole("table");
    expect(within(table).getByRole("link", { name: "web-1" })).toHaveAttribute("href", "/hosts/web-1");
    expect(within(table).getAllByRole("row")).toHaveLength(4);
    expect(within(table).getByText("13.5%")).toBeInTheDocument();
    const user = userEvent.setup();
    await user.click(screen.getByRole("button", { name: /^CPU/ }));
    await waitFor(() => expect(currentLocation()).toContain("sort=-cpu"));
    expect(screen.getByRole("columnheader", { name: /CPU/ })).toHaveAttribute("aria-sort", "descending");
    await user.click(screen.getByRole("button", { name: /^down/ }));
    await waitFor(() => expect(currentLocation()).toContain("status=down"));
    await user.type(screen.getByLabelText("Label filter"), "role=db{Enter}");
    await waitFor(() => expect(currentLocation()).toContain("label=role%3Ddb"));
    const last = calls.requests.filter((r) => r.url.pathname === "/api/v1/overview").pop()!;
    expect(last.url.searchParams.get("sort")).toBe("-cpu");
    expect(last.url.searchParams.get("status")).toBe("down");
    expect(last.url.searchParams.getAll("label")).toEqual(["role=db"]);
  });
});

describe("rule form", () => {
  const handlers = {
    "/api/v1/auth/whoami": () => ADMIN,
    "/api/v1/channels": () => [{ name: "ops", spec: { name: "ops", config: { type: "webhook" } } }],
  };

  it("shows mistakes before saving, then sends the spec", async () => {
    const calls = stubFetch({ ...handlers, "POST /api/v1/rules": (_u, init) => ({ name: JSON.parse(String(init.body)).name }) });
    renderPage(<RuleEditor />, { route: "/rules/new", path: "/rules/new" });
    const user = userEvent.setup();
    await screen.findByRole("heading", { name: "New rule" });
    await waitFor(() => expect(screen.getByLabelText("Name")).toBeEnabled());
    await user.type(screen.getByLabelText("Name"), "Bad Name");
    await user.click(screen.getByRole("button", { name: "Create rule" }));
    expect(screen.getByText(/Fix the marked fields/)).toBeInTheDocument();
    expect(screen.getByLabelText("Name")).toHaveAttribute("aria-invalid", "true");
    expect(calls.requests.some((r) => r.method === "POST")).toBe(false);
    await user.clear(screen.getByLabelText("Name"));
    await user.type(screen.getByLabelText("Name"), "cpu-high");
    await user.type(screen.getByRole("combobox", { name: "Metric" }), "cpu.usage_percent");
    await user.type(screen.getByLabelText("Value"), "90");
    await user.click(await screen.findByRole("checkbox", { name: /ops/ }));
    await user.click(screen.getByRole("button", { name: "Create rule" }));
    await waitFor(() => expect(calls.requests.some((r) => r.method === "POST")).toBe(true));
    const sent = calls.requests.find((r) => r.method === "POST")!.body as Record<string, unknown>;
    expect(sent).toMatchObject({ name: "cpu-high", metric: "cpu.usage_percent", params: { kind: "threshold", comparator: ">", value: 90 }, channels: ["ops"] });
  });

  it("makes a forecast rule from the Capacity page's link", async () => {
    const calls = stubFetch({ ...handlers, "POST /api/v1/rules": (_u, init) => ({ name: JSON.parse(String(init.body)).name }) });
    renderPage(<RuleEditor />, { route: "/rules/new?kind=forecast&metric=disk.used_percent&value=90", path: "/rules/new" });
    const user = userEvent.setup();
    await waitFor(() => expect(screen.getByLabelText("Name")).toBeEnabled());
    expect(screen.getByLabelText("Kind")).toHaveValue("forecast");
    expect(screen.getByLabelText("Value")).toHaveValue(90);
    expect(screen.queryByRole("button", { name: "Preview (backtest)" })).toBeNull();
    expect(screen.getByRole("link", { name: "See what it forecasts now" })).toHaveAttribute(
      "href",
      "/capacity?metric=disk.used_percent&threshold=90&direction=above&horizon=7d",
    );
    await user.type(screen.getByLabelText("Name"), "disk-full-soon");
    await user.clear(screen.getByLabelText("Horizon"));
    await user.type(screen.getByLabelText("Horizon"), "3 days");
    await user.click(screen.getByRole("button", { name: "Create rule" }));
    expect(screen.getByLabelText("Horizon")).toHaveAttribute("aria-invalid", "true");
    await user.clear(screen.getByLabelText("Horizon"));
    await user.type(screen.getByLabelText("Horizon"), "3d");
    await user.click(screen.getByRole("button", { name: "Create rule" }));
    await waitFor(() => expect(calls.requests.some((r) => r.method === "POST")).toBe(true));
    const sent = calls.requests.find((r) => r.method === "POST")!.body as Record<string, unknown>;
    expect(sent).toMatchObject({
      name: "disk-full-soon",
      metric: "disk.used_percent",
      params: { kind: "forecast", value: 90, direction: "above", horizon: 259200, lookback: 604800, every: 900 },
    });
  });

  it("puts the API's field errors beside the fields", async () => {
    const calls = stubFetch({ ...handlers, "POST /api/v1/rules": () => problem(400, "invalid rule", [{ loc: "params.threshold.value", msg: "value is too odd" }]) });
    renderPage(<RuleEditor />, { route: "/rules/new", path: "/rules/new" });
    const user = userEvent.setup();
    await waitFor(() => expect(screen.getByLabelText("Name")).toBeEnabled());
    await user.type(screen.getByLabelText("Name"), "r");
    await user.type(screen.getByRole("combobox", { name: "Metric" }), "m");
    await user.type(screen.getByLabelText("Value"), "1");
    await user.click(screen.getByRole("button", { name: "Create rule" }));
    await waitFor(() => expect(calls.requests.some((r) => r.method === "POST")).toBe(true));
    expect(await screen.findByText("value is too odd")).toBeInTheDocument();
  });

  it("shows Kubernetes rules read-only with their source", async () => {
    stubFetch({
      ...handlers,
      "/api/v1/rules/disk": () => ({
        id: 1, name: "disk", version: 1, source: "kubernetes", created_at: "", updated_at: "",
        spec: { name: "disk", metric: "disk.used_percent", params: { kind: "threshold", value: 90 }, annotations: { source: "kubernetes:prod/disk" } },
      }),
    });
    renderPage(<RuleEditor />, { route: "/rules/disk", path: "/rules/:name" });
    expect(await screen.findByText("Kubernetes AlertRule prod/disk")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: /Save rule/ })).toBeNull();
    expect(screen.getByLabelText("Value")).toBeDisabled();
  });
});

describe("alerts", () => {
  it("acknowledges with an admin key", async () => {
    const calls = stubFetch({
      "/api/v1/auth/whoami": () => ADMIN,
      "/api/v1/rules": () => [],
      "/api/v1/alerts": () => ({ items: [alert], next_before_id: null }),
      "POST /api/v1/alerts/7/ack": () => ({ ...alert, acked_at: "2026-01-01T00:01:00Z" }),
    });
    renderPage(<Alerts />, { route: "/alerts" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: /Acknowledge alert 7/ }));
    await waitFor(() => expect(calls.requests.some((r) => r.method === "POST" && r.url.pathname === "/api/v1/alerts/7/ack")).toBe(true));
    expect(screen.getByRole("button", { name: "team=ops" })).toBeInTheDocument();
  });

  it("disables actions for a read key, never a raw 403", async () => {
    stubFetch({
      "/api/v1/auth/whoami": () => READER,
      "/api/v1/rules": () => [],
      "/api/v1/alerts": () => ({ items: [alert], next_before_id: null }),
    });
    renderPage(<Alerts />, { route: "/alerts" });
    const ack = await screen.findByRole("button", { name: /Acknowledge alert 7/ });
    await waitFor(() => expect(ack).toBeDisabled());
    expect(ack).toHaveAttribute("title", "Needs a key with the admin scope");
  });
});

describe("silences", () => {
  it("starts from the alert's matchers", async () => {
    const calls = stubFetch({
      "/api/v1/auth/whoami": () => ADMIN,
      "/api/v1/silences": () => [],
      "/api/v1/mute-windows": () => [],
      "POST /api/v1/silences": () => ({ id: "s1", ends_at: "2026-01-01T02:00:00Z" }),
    });
    renderPage(<Silences />, { route: "/silences?new=1&matcher=alertname%3Dcpu-high&matcher=host%3Dweb-1&comment=from+alert" });
    expect(await screen.findByLabelText("Label 1")).toHaveValue("alertname");
    expect(screen.getByLabelText("Value 1")).toHaveValue("cpu-high");
    expect(screen.getByLabelText("Value 2")).toHaveValue("web-1");
    const user = userEvent.setup();
    await waitFor(() => expect(screen.getByRole("button", { name: "Create silence" })).toBeEnabled());
    await user.click(screen.getByRole("button", { name: "Create silence" }));
    await waitFor(() => expect(calls.requests.some((r) => r.method === "POST")).toBe(true));
    const body = calls.requests.find((r) => r.method === "POST")!.body as { matchers: unknown[]; comment: string };
    expect(body.matchers).toEqual([
      { name: "alertname", op: "=", value: "cpu-high" },
      { name: "host", op: "=", value: "web-1" },
    ]);
    expect(body.comment).toBe("from alert");
    expect(await screen.findByText(/Silence created/)).toBeInTheDocument();
  });
});

describe("backtest", () => {
  it("shades where the rule would have fired", () => {
    const t = (at: string, from: string, to: string, host = "web-1") => ({ at, host, metric: "m", labels: {}, from, to, value: 1, expected: null, explanation: null });
    const regions = firingRegions({
      rule: "r", kind: "threshold", start: "2026-01-01T00:00:00Z", end: "2026-01-01T03:00:00Z", resolution: "raw",
      series: 2, truncated: false, points: 10, counts: { firing: 2, resolved: 1 },
      transitions: [
        t("2026-01-01T00:10:00Z", "normal", "firing"),
        t("2026-01-01T00:20:00Z", "firing", "resolved"),
        t("2026-01-01T02:00:00Z", "normal", "firing", "web-2"),
      ],
    });
    expect(regions.map((r) => [r.from, r.to])).toEqual([
      [Date.parse("2026-01-01T00:10:00Z") / 1000, Date.parse("2026-01-01T00:20:00Z") / 1000],
      [Date.parse("2026-01-01T02:00:00Z") / 1000, Date.parse("2026-01-01T03:00:00Z") / 1000],
    ]);
  });
});
