import { describe, expect, it } from "vitest";
import { durationText, emptySloForm, fromSloSpec, sloFieldOf, span, toSloSpec } from "./slo";

describe("SLO form", () => {
  it("builds the spec the API expects and reads it back", () => {
    const f = { ...emptySloForm(), name: "api-ok", objective: "99.5", window: "7d", kind: "ratio" as const, good: "http.ok", total: "http.requests", totalLabels: "code=all", hostLabels: "role=api" };
    const { spec, errors } = toSloSpec(f);
    expect(errors).toEqual({});
    expect(spec).toEqual({
      name: "api-ok",
      description: "",
      objective: 99.5,
      window: 604800,
      selector: { match_labels: { role: "api" } },
      indicator: { kind: "ratio", good: { metric: "http.ok", match_labels: {} }, total: { metric: "http.requests", match_labels: { code: "all" } }, counter: false },
    });
    expect(fromSloSpec(spec)).toMatchObject({ name: "api-ok", window: "7d", kind: "ratio", totalLabels: "code=all", hostLabels: "role=api" });
  });

  it("names every mistake before saving", () => {
    const { errors } = toSloSpec({ ...emptySloForm(), name: "Bad Name", objective: "100", window: "10s", gap: "2d", hostLabels: "1x=y" });
    expect(Object.keys(errors).sort()).toEqual(["gap", "hostLabels", "name", "objective", "window"]);
    expect(toSloSpec({ ...emptySloForm(), name: "x", kind: "ratio", good: "", total: "t" }).errors.good).toBe("a metric name");
  });

  it("maps API field errors and formats lengths of time", () => {
    expect(sloFieldOf("indicator.ratio.good.metric")).toBe("good");
    expect(sloFieldOf("objective")).toBe("objective");
    expect(span(3725)).toBe("1h 2m");
    expect(span(45)).toBe("45s");
    expect(span(null)).toBe("—");
    expect(durationText(2592000)).toBe("30d");
  });
});
