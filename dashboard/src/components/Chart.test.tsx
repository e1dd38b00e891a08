// The chart's own behaviour around uPlot (which needs a canvas, so it is
// replaced here by a recorder): legend toggling, zoom by selection, the
// y scale and labels it is given, overlays kept in range.

import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";

const made: { opts: any; setSeries: ReturnType<typeof vi.fn>; destroy: ReturnType<typeof vi.fn> }[] = [];

vi.mock("uplot", () => {
  class FakePlot {
    static pxRatio = 1;
    static tzDate = (d: Date) => d;
    opts: any;
    setSeries = vi.fn();
    destroy = vi.fn();
    width = 600;
    select = { left: 100, width: 200, top: 0, height: 100 };
    constructor(opts: any) {
      this.opts = opts;
      made.push(this as any);
    }
    posToVal(px: number) {
      return 1000 + px;
    }
    setSelect() {}
    redraw() {}
    setSize() {}
  }
  return { default: FakePlot };
});
vi.stubGlobal("ResizeObserver", class { observe() {} disconnect() {} });

const { Chart } = await import("./Chart");

afterEach(() => {
  made.length = 0;
});

const series = [
  { label: "eth0 rx", points: [[0, 1e6], [60, 9.5e8]] as [number, number][] },
  { label: "eth0 tx", points: [[0, 2e5], [60, 3e5]] as [number, number][] },
];

describe("Chart", () => {
  it("toggles series from the legend", async () => {
    render(<Chart title="Network" series={series} unit="bytes/s" start={0} end={60} tz="UTC" />);
    const user = userEvent.setup();
    const rx = screen.getByRole("button", { name: /eth0 rx/ });
    expect(rx).toHaveAttribute("aria-pressed", "true");
    await user.click(rx);
    expect(rx).toHaveAttribute("aria-pressed", "false");
    expect(made[0].setSeries).toHaveBeenCalledWith(1, { show: false });
    await user.click(rx);
    expect(made[0].setSeries).toHaveBeenLastCalledWith(1, { show: true });
  });

  it("gives uPlot a round byte scale above the data and reports a zoom", () => {
    const zoom = vi.fn();
    render(<Chart title="Network" series={series} unit="bytes/s" start={0} end={60} tz="UTC" onZoom={zoom} thresholds={[{ value: 1.2e9, label: "limit" }]} />);
    const opts = made[0].opts;
    const [lo, hi] = opts.scales.y.range(null, 0, 9.5e8);
    expect(lo).toBe(0);
    expect(hi).toBeGreaterThanOrEqual(1.2e9); // the threshold stays in view
    const splits = opts.axes[1].splits();
    const labels = opts.axes[1].values(null, splits);
    expect(labels.every((l: string) => /^\d+ (MiB|GiB)\/s$/.test(l))).toBe(true);
    expect(opts.cursor.drag.setScale).toBe(false);
    opts.hooks.setSelect[0](made[0]);
    expect(zoom).toHaveBeenCalledWith(1100, 1300);
    expect(screen.getByRole("img", { name: /Network: 2 series/ })).toBeInTheDocument();
  });

  it("redraws new markers without rebuilding the chart", () => {
    const { rerender } = render(<Chart title="Network" series={series} unit="bytes/s" start={0} end={60} tz="UTC" />);
    rerender(<Chart title="Network" series={series} unit="bytes/s" start={0} end={60} tz="UTC" markers={[{ t: 30, kind: "deploy", label: "deploy v2" }]} />);
    expect(made).toHaveLength(1);
    expect(screen.getByText(/deploy v2/)).toBeInTheDocument();
  });
});
