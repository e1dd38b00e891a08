// Chart benchmark page (bench/dashboard.py builds and opens it): renders the
// dashboard's Chart with `series` series of `points` one-minute points and
// reports how long it took from the data to the chart drawn on its canvas,
// and to the next frame the browser painted.

import { flushSync } from "react-dom";
import { createRoot, type Root } from "react-dom/client";
import { Chart, type ChartSeries } from "../src/components/Chart";
import "../src/styles.css";

declare global {
  interface Window {
    runBench: (series: number, points: number) => Promise<{ drawn: number; painted: number }>;
  }
}

function makeSeries(count: number, points: number, end: number): ChartSeries[] {
  return Array.from({ length: count }, (_, s) => {
    const data: [number, number][] = new Array(points);
    for (let i = 0; i < points; i++) {
      const t = end - (points - i) * 60;
      data[i] = [t, 40 + 20 * Math.sin((i + s * 97) / 300) + ((i * 7919 + s * 104729) % 1000) / 100];
    }
    return { label: `host-${s} cpu`, points: data };
  });
}

let root: Root | null = null;

window.runBench = (count, points) =>
  new Promise((resolve) => {
    const end = Math.floor(Date.now() / 1000 / 60) * 60;
    const series = makeSeries(count, points, end);
    root?.unmount();
    const host = document.getElementById("root")!;
    root = createRoot(host);
    const started = performance.now();
    flushSync(() =>
      root!.render(
        <Chart
          title="benchmark"
          series={series}
          unit="percent"
          start={end - points * 60}
          end={end}
          tz="UTC"
          height={400}
          onDrawn={() => {
            const drawn = performance.now() - started;
            requestAnimationFrame(() => resolve({ drawn, painted: performance.now() - started }));
          }}
        />,
      ),
    );
  });

