import { describe, expect, it } from "vitest";
import { formatValue, niceScale, niceStep, tickLabels, unitOf } from "./units";

describe("niceScale", () => {
  it("puts the top tick at or above the maximum", () => {
    for (const [lo, hi] of [[0, 97.3], [12, 13.7], [0, 1e9], [3.2, 3.21], [-5, 17], [0, 0.004]]) {
      const s = niceScale(lo, hi, "");
      expect(s.max).toBeGreaterThanOrEqual(hi);
      expect(s.min).toBeLessThanOrEqual(lo);
      expect(s.ticks[0]).toBe(s.min);
      expect(s.ticks[s.ticks.length - 1]).toBeCloseTo(s.max);
    }
  });

  it("steps by 1, 2 or 5 times a power of ten", () => {
    for (const hi of [0.7, 3, 42, 977, 12_345, 7e6]) {
      const step = niceScale(0, hi, "").step;
      const mantissa = step / 10 ** Math.floor(Math.log10(step));
      expect([1, 2, 5]).toContainEqual(Number(mantissa.toFixed(6)));
    }
  });

  it("uses binary units for bytes, so ticks are round MiB, not 953.7 MiB", () => {
    const s = niceScale(0, 1e9, "bytes");
    const labels = tickLabels(s.ticks, s.step, "bytes");
    expect(labels).toEqual(["0 MiB", "200 MiB", "400 MiB", "600 MiB", "800 MiB", "1000 MiB"]);
    expect(s.max).toBeGreaterThanOrEqual(1e9);
    const g = niceScale(0, 5.5 * 2 ** 30, "bytes/s");
    expect(tickLabels(g.ticks, g.step, "bytes/s")).toEqual(["0 GiB/s", "2 GiB/s", "4 GiB/s", "6 GiB/s"]);
  });

  it("labels keep every digit and the same decimals", () => {
    const s = niceScale(0.9, 0.907, "");
    const labels = tickLabels(s.ticks, s.step, "");
    expect(new Set(labels.map((l) => l.split(".")[1]?.length ?? 0)).size).toBe(1);
    expect(labels.every((l) => /^\d/.test(l))).toBe(true);
  });

  it("keeps percentages on 0..100 when the data fit", () => {
    const s = niceScale(3, 97, "percent");
    expect(s.min).toBe(0);
    expect(s.max).toBe(100);
    expect(tickLabels(s.ticks, s.step, "percent")[1]).toBe("20%");
  });

  it("handles flat and empty data", () => {
    expect(niceScale(5, 5, "")).toMatchObject({ min: 0, max: 5 });
    expect(niceScale(-3, -3, "").max).toBe(0);
    expect(niceScale(Infinity, -Infinity, "").ticks.length).toBeGreaterThan(1);
    expect(niceStep(0, 5, false)).toBe(1);
  });
});

describe("units", () => {
  it("derives the unit from the metric name", () => {
    expect(unitOf("cpu.usage_percent")).toBe("percent");
    expect(unitOf("net.rx_bytes_per_sec")).toBe("bytes/s");
    expect(unitOf("mem.used_bytes")).toBe("bytes");
    expect(unitOf("disk.read_ops_per_sec")).toBe("ops/s");
    expect(unitOf("system.load1")).toBe("");
  });

  it("formats values", () => {
    expect(formatValue(1536, "bytes")).toBe("1.5 KiB");
    expect(formatValue(2.5 * 2 ** 20, "bytes/s")).toBe("2.5 MiB/s");
    expect(formatValue(12.345, "percent")).toBe("12.35%");
    expect(formatValue(1234567, "")).toBe("1.23M");
    expect(formatValue(null, "percent")).toBe("–");
  });
});
