import { describe, expect, it } from "vitest";
import { emptyForm, fromSpec, managedBy, seededForm, serverErrors, toSpec } from "./ruleForm";
import type { RuleSpec } from "./types";

describe("rule form", () => {
  it("validates as the API does", () => {
    const f = { ...emptyForm(), name: "CPU High", metric: "cpu usage", value: "" };
    const { errors } = toSpec(f);
    expect(Object.keys(errors).sort()).toEqual(["metric", "name", "value"]);
    expect(toSpec({ ...emptyForm(), kind: "absence", name: "gone" }).errors).toEqual({});
    const anomaly = toSpec({ ...emptyForm(), name: "a", metric: "m", kind: "anomaly", scoreThreshold: "1.5", recentPoints: "2.5" });
    expect(Object.keys(anomaly.errors).sort()).toEqual(["recentPoints", "scoreThreshold"]);
    expect(toSpec({ ...emptyForm(), name: "b", metric: "m", kind: "baseline", band: "0" }).errors.band).toBe("must be greater than 0");
    expect(toSpec({ ...emptyForm(), name: "t", metric: "m", value: "1", hostLabels: "bad-name=x" }).errors.hostLabels).toContain("not a valid label name");
  });

  it("builds the spec and reads it back", () => {
    const spec: RuleSpec = {
      name: "disk-full",
      description: "disk",
      enabled: false,
      metric: "disk.used_percent",
      match_series_labels: { mount: "/" },
      selector: { match_labels: { role: "db" }, hosts: ["db-1", "db-2"] },
      params: { kind: "threshold", comparator: ">=", value: 90, recovery_value: 80 },
      for: 60,
      keep_firing_for: 0,
      severity: "critical",
      labels: { team: "ops" },
      annotations: { summary: "{{ host }} full" },
      channels: ["ops"],
    };
    const back = toSpec(fromSpec(spec));
    expect(back.errors).toEqual({});
    expect(back.spec).toEqual(spec);
  });

  it("maps API errors to fields", () => {
    expect(serverErrors([{ loc: "body.params.threshold.value", msg: "bad" }, { loc: "name", msg: "taken" }])).toEqual({ value: "bad", name: "taken" });
  });

  it("shows who manages a rule", () => {
    const spec = { name: "x", params: { kind: "absence" as const }, annotations: { source: "kubernetes:prod/disk" } };
    expect(managedBy({ source: "kubernetes", spec })).toBe("Kubernetes AlertRule prod/disk");
    expect(managedBy({ source: "api", spec })).toBeNull();
  });

  it("builds and reads back a forecast rule, durations as written", () => {
    const f = { ...emptyForm(), name: "disk-full", metric: "disk.used_percent", kind: "forecast" as const, value: "90", direction: "above", horizon: "7d", recoveryHorizon: "10d", lookback: "14d", every: "15m" };
    const { spec, errors } = toSpec(f);
    expect(errors).toEqual({});
    expect(spec.params).toEqual({ kind: "forecast", value: 90, direction: "above", horizon: 604800, lookback: 1209600, every: 900, recovery_horizon: 864000 });
    const back = fromSpec(spec);
    expect([back.kind, back.horizon, back.recoveryHorizon, back.lookback, back.every]).toEqual(["forecast", "7d", "10d", "14d", "15m"]);
    const bad = toSpec({ ...f, horizon: "soon", lookback: "1h", recoveryHorizon: "1d" }).errors;
    expect(bad.horizon).toContain("a duration");
    expect(bad.lookback).toContain("between 12h and");
    expect(toSpec({ ...f, recoveryHorizon: "1d" }).errors.recoveryHorizon).toBe("at least the horizon");
    expect(serverErrors([{ loc: "body.params.forecast.horizon", msg: "too long" }])).toEqual({ horizon: "too long" });
    const seeded = seededForm(new URLSearchParams("kind=forecast&metric=disk.used_percent&value=90"));
    expect([seeded.kind, seeded.metric, seeded.value, seeded.direction]).toEqual(["forecast", "disk.used_percent", "90", "above"]);
  });
});

describe("burn_rate rules", () => {
  it("round-trips the SLO and its window pairs", () => {
    const f = { ...emptyForm(), name: "api-burn", kind: "burn_rate" as const, slo: "api-success", burnWindows: "1h/5m@14.4, 6h / 30m @ 6" };
    const { spec, errors } = toSpec(f);
    expect(errors).toEqual({});
    expect(spec.metric).toBeNull();
    expect(spec.params).toEqual({ kind: "burn_rate", slo: "api-success", windows: [{ long: 3600, short: 300, factor: 14.4 }, { long: 21600, short: 1800, factor: 6 }] });
    expect(fromSpec(spec).burnWindows).toBe("1h/5m@14.4, 6h/30m@6");
    const bad = toSpec({ ...f, metric: "cpu", slo: "", burnWindows: "5m/1h@2" }).errors;
    expect(Object.keys(bad).sort()).toEqual(["burnWindows", "metric", "slo"]);
  });
});
