import { describe, expect, it } from "vitest";
import { align, commonLabels, seriesLabel } from "./series";

describe("align", () => {
  it("joins series on one time axis", () => {
    const [xs, a, b] = align([
      [[0, 1], [60, 2], [120, 3]],
      [[60, 5], [180, 6]],
    ]);
    expect(xs).toEqual([0, 60, 120, 180]);
    expect(a).toEqual([1, 2, 3, undefined]);
    expect(b).toEqual([undefined, 5, undefined, 6]);
  });

  it("breaks the line where samples are missing", () => {
    const points: [number, number][] = [];
    for (let t = 0; t <= 600; t += 60) if (t < 240 || t > 420) points.push([t, t]);
    const [xs, col] = align([points]);
    const gap = col.indexOf(null);
    expect(gap).toBeGreaterThan(0);
    expect(xs[gap]).toBeGreaterThan(180);
    expect(xs[gap]).toBeLessThan(480);
  });

  it("aligns 20 series of 43,200 points quickly", () => {
    const series = Array.from({ length: 20 }, (_, s) => Array.from({ length: 43_200 }, (_, i): [number, number] => [i * 60, s + Math.sin(i)]));
    const started = performance.now();
    const [xs, ...cols] = align(series);
    expect(xs.length).toBe(43_200);
    expect(cols.length).toBe(20);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe("labels", () => {
  it("names series by what differs", () => {
    const all = [{ cpu: "0", env: "prod" }, { cpu: "1", env: "prod" }];
    const common = commonLabels(all);
    expect([...common]).toEqual(["env"]);
    expect(seriesLabel("web-1", "cpu", all[0], common, false, true)).toBe("web-1 {cpu=0}");
  });
});
