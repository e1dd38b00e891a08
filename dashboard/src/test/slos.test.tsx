// The SLOs & availability page: the availability table per group and host,
// SLOs with their budgets, the SLO form for admin keys only.

import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import Slos from "../pages/Slos";
import type { AvailabilityReport, StoredSlo } from "../lib/slo";
import { ADMIN, problem, READER, renderPage, stubFetch } from "./render";

afterEach(() => vi.unstubAllGlobals());

const report: AvailabilityReport = {
  start: 0,
  end: 10800,
  gap: 300,
  group_by: "label:role",
  groups: [
    {
      group: { role: "web" },
      uptime_percent: 86.944444,
      monitored_seconds: 21600,
      downtime_seconds: 2820,
      outages: 3,
      down_at_end: true,
      longest_outage: { start: 9000, end: 10800, seconds: 1800, ongoing: true },
      mttr_seconds: 510,
      hosts: [
        {
          host: "web-1",
          labels: { role: "web" },
          uptime_percent: 90.555556,
          monitored_seconds: 10800,
          downtime_seconds: 1020,
          outages: 2,
          down_at_end: false,
          longest_outage: { start: 1190, end: 1800, seconds: 610, ongoing: false },
          mttr_seconds: 510,
          outage_list: [
            { start: 4990, end: 5400, seconds: 410, ongoing: false },
            { start: 1190, end: 1800, seconds: 610, ongoing: false },
          ],
        },
      ],
    },
  ],
};

const slo: StoredSlo = {
  id: 1,
  name: "api-success",
  version: 1,
  source: "api",
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
  spec: {
    name: "api-success",
    description: "",
    objective: 99.9,
    window: 2592000,
    selector: { match_labels: { role: "api" } },
    indicator: { kind: "ratio", good: { metric: "http.ok" }, total: { metric: "http.requests" } },
  },
  status: {
    start: 0,
    end: 1,
    good: 99950,
    total: 100000,
    sli_percent: 99.95,
    attained: true,
    error_budget: 0.001,
    error_budget_remaining: 0.5,
    burn_rates: { "5m": 20, "1h": 16.67, "30m": 0.5, "6h": 2.8 },
  },
};

describe("SLOs & availability", () => {
  it("shows availability per group and host, with outages", async () => {
    const calls = stubFetch({ "/api/v1/auth/whoami": () => READER, "/api/v1/reports/availability": () => report, "/api/v1/slos": () => [slo] });
    renderPage(<Slos />, { route: "/slos?group=role&period=7d" });
    const table = await screen.findByRole("table", { name: "Availability per group and host" });
    const rows = within(table).getAllByRole("row");
    expect(rows[1]).toHaveTextContent("role=web86.944%347m30m8m 30s");
    expect(rows[2]).toHaveTextContent("web-1");
    expect(within(rows[2]).queryByText("down")).toBeNull();
    expect(within(table).getByRole("list", { name: "Outages of web-1" }).children).toHaveLength(2);
    const asked = calls.requests.find((r) => r.url.pathname === "/api/v1/reports/availability")!;
    expect(asked.url.searchParams.get("group_by")).toBe("label:role");
    expect(asked.url.searchParams.get("period")).toBe("7d");
    const slos = await screen.findByRole("table", { name: "Service level objectives" });
    expect(within(slos).getByRole("row", { name: /api-success/ })).toHaveTextContent("99.9% / 30d99.9500% 50.0%16.67x / 20.00x2.80x / 0.50xmet");
    expect(screen.getByRole("button", { name: "New SLO" })).toBeDisabled();
    expect(screen.getByRole("button", { name: "Edit api-success" })).toBeDisabled();
  });

  it("creates an SLO with an admin key, showing the API's refusals beside the fields", async () => {
    let attempts = 0;
    const calls = stubFetch({
      "/api/v1/auth/whoami": () => ADMIN,
      "/api/v1/reports/availability": () => report,
      "GET /api/v1/slos": () => [],
      "PUT /api/v1/slos/": () => (++attempts === 1 ? problem(400, "invalid slo", [{ loc: "window", msg: "too long for the store" }]) : { ...slo, name: "web-up" }),
    });
    renderPage(<Slos />, { route: "/slos" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "New SLO" }));
    const form = screen.getByRole("form", { name: "New SLO" });
    await user.type(within(form).getByLabelText("Name"), "web-up");
    await user.clear(within(form).getByLabelText("Objective (%)"));
    await user.type(within(form).getByLabelText("Objective (%)"), "150");
    await user.type(within(form).getByLabelText("Host labels"), "role=web");
    await user.click(within(form).getByRole("button", { name: "Save SLO" }));
    expect(within(form).getByText(/a percentage above 0/)).toBeInTheDocument();
    expect(calls.requests.filter((r) => r.method === "PUT")).toHaveLength(0);
    await user.clear(within(form).getByLabelText("Objective (%)"));
    await user.type(within(form).getByLabelText("Objective (%)"), "99.5");
    await user.click(within(form).getByRole("button", { name: "Save SLO" }));
    expect(await within(form).findByText("too long for the store")).toBeInTheDocument();
    await user.click(within(form).getByRole("button", { name: "Save SLO" }));
    expect(await screen.findByRole("status")).toHaveTextContent("SLO web-up saved.");
    const put = calls.requests.filter((r) => r.method === "PUT").pop()!;
    expect(put.url.pathname).toBe("/api/v1/slos/web-up");
    expect(put.body).toEqual({
      name: "web-up",
      description: "",
      objective: 99.5,
      window: 2592000,
      selector: { match_labels: { role: "web" } },
      indicator: { kind: "availability", gap: 300 },
    });
  });
});
