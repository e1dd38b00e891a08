// A time-series chart on uPlot: drag to zoom (the range goes to the URL),
// a tooltip with every series at the cursor, a legend whose entries toggle
// their series, y ticks at 1-2-5 x 10^n of the unit (binary for bytes), and
// overlays: event / alert markers, threshold lines and expected bands.

import { useEffect, useMemo, useRef, useState } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { align, extent, PALETTE } from "../lib/series";
import { formatTime, zoneOf } from "../lib/time";
import type { Point } from "../lib/types";
import { formatValue, niceScale, tickLabels, type Scale, type Unit } from "../lib/units";

export interface ChartSeries {
  label: string;
  points: Point[];
  color?: string;
  /** Dashed line (e.g. a projection), in CSS pixels: [dash, gap]. */
  dash?: number[];
}

export interface Marker {
  t: number;
  label: string;
  kind: "deploy" | "event" | "firing" | "pending" | "resolved" | "alert" | "forecast";
}

export interface Band {
  from: number;
  to: number;
  low: number | null;
  high: number | null;
  label: string;
}

/** A stretch of time to shade (e.g. while an alert fired). */
export interface Region {
  from: number;
  to: number;
  label: string;
}

export interface Threshold {
  value: number;
  label: string;
}

export interface ChartProps {
  title: string;
  series: ChartSeries[];
  unit: Unit;
  start: number;
  end: number;
  tz: string;
  height?: number;
  markers?: Marker[];
  bands?: Band[];
  thresholds?: Threshold[];
  regions?: Region[];
  onZoom?: (start: number, end: number) => void;
  /** Called once the first frame is drawn (the benchmark times it). */
  onDrawn?: () => void;
}

const MARKER_COLORS: Record<Marker["kind"], string> = {
  deploy: "#7c3aed",
  event: "#0891b2",
  firing: "#dc2626",
  pending: "#d97706",
  resolved: "#16a34a",
  alert: "#dc2626",
  forecast: "#ea580c",
};

// Time axis labels, 24-hour clock and ISO dates: [tick step, format,
// and the context line added when the year / month / day / hour changes].
const X_VALUES: uPlot.Axis.Values = [
  [3600 * 24 * 365, "{YYYY}", null, null, null, null, null, null, 1],
  [3600 * 24 * 28, "{YYYY}-{MM}", "\n{YYYY}", null, null, null, null, null, 1],
  [3600 * 24, "{MM}-{DD}", "\n{YYYY}", null, null, null, null, null, 1],
  [3600, "{HH}:{mm}", "\n{YYYY}-{MM}-{DD}", null, "\n{MM}-{DD}", null, null, null, 1],
  [60, "{HH}:{mm}", "\n{YYYY}-{MM}-{DD}", null, "\n{MM}-{DD}", null, null, null, 1],
  [1, ":{ss}", "\n{YYYY}-{MM}-{DD} {HH}:{mm}", null, "\n{MM}-{DD} {HH}:{mm}", null, "\n{HH}:{mm}", null, 1],
];

// Stable defaults: a new [] on each render would rebuild the chart.
const NO_MARKERS: Marker[] = [];
const NO_BANDS: Band[] = [];
const NO_THRESHOLDS: Threshold[] = [];
const NO_REGIONS: Region[] = [];

function cssVar(name: string, fallback: string): string {
  if (typeof window === "undefined") return fallback;
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

function useDarkTheme(): boolean {
  const [dark, setDark] = useState(() => document.documentElement.dataset.theme === "dark");
  useEffect(() => {
    const observer = new MutationObserver(() =>
      setDark(document.documentElement.dataset.theme === "dark"),
    );
    observer.observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    return () => observer.disconnect();
  }, []);
  return dark;
}

export function Chart(props: ChartProps) {
  const { title, series, unit, start, end, tz, height = 240 } = props;
  const markers = props.markers ?? NO_MARKERS;
  const bands = props.bands ?? NO_BANDS;
  const thresholds = props.thresholds ?? NO_THRESHOLDS;
  const regions = props.regions ?? NO_REGIONS;
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const tooltip = useRef<HTMLDivElement>(null);
  const [hidden, setHidden] = useState<Set<number>>(new Set());
  const dark = useDarkTheme();
  const onZoom = useRef(props.onZoom);
  onZoom.current = props.onZoom;
  const onDrawn = useRef(props.onDrawn);
  onDrawn.current = props.onDrawn;
  // Markers arrive with their own queries: redrawn, not rebuilt, when they change.
  const markerRef = useRef(markers);
  markerRef.current = markers;

  const data = useMemo(() => align(series.map((s) => s.points)), [series]);
  const range = useMemo(() => extent(data.slice(1) as (number | null | undefined)[][]), [data]);
  const colors = useMemo(
    () => series.map((s, i) => s.color ?? PALETTE[i % PALETTE.length]),
    [series],
  );

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const axis = cssVar("--chart-axis", dark ? "#a3acc2" : "#4b5563");
    const grid = cssVar("--chart-grid", dark ? "#273046" : "#e5e7eb");
    let drawn = false;
    const [lo0, hi0] = range;
    const extra = [
      ...thresholds.map((t) => t.value),
      ...bands.flatMap((b) => [b.low, b.high]).filter((v): v is number => v !== null),
    ];
    // The y scale is fixed here (uPlot need not scan the data for it).
    const scale: Scale = niceScale(Math.min(lo0, ...extra), Math.max(hi0, ...extra), unit);
    const fmt = (v: number | null | undefined) => formatValue(v ?? null, unit);
    const zone = zoneOf(tz);
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      tzDate: zone ? (ts) => uPlot.tzDate(new Date(ts * 1000), zone) : undefined,
      legend: { show: false },
      cursor: {
        drag: { x: true, y: false, setScale: false },
        points: { size: 6 },
        focus: { prox: 16 },
      },
      focus: { alpha: 0.4 },
      select: { show: true, left: 0, top: 0, width: 0, height: 0 },
      scales: {
        x: { time: true, range: () => [start, end] },
        y: { auto: false, range: () => [scale.min, scale.max] },
      },
      axes: [
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, values: X_VALUES },
        {
          stroke: axis,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid },
          splits: () => scale.ticks,
          values: (_u, splits) => tickLabels(splits, scale.step, unit),
          size: (_u, values) => {
            const longest = Math.max(3, ...(values ?? []).map((v) => String(v).length));
            return Math.ceil(longest * 7.5 + 26);
          },
        },
      ],
      series: [
        { value: (_u, v) => (v === null ? "–" : formatTime(v, tz)) },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: colors[i],
          width: 1,
          dash: s.dash,
          show: !hidden.has(i),
          spanGaps: false,
          value: (_u: uPlot, v: number | null) => fmt(v),
        })),
      ],
      hooks: {
        drawAxes: [
          (u) => {
            const ctx = u.ctx;
            ctx.save();
            ctx.fillStyle = dark ? "rgba(248,113,113,0.14)" : "rgba(220,38,38,0.09)";
            for (const r of regions) {
              const x0 = u.valToPos(Math.max(r.from, start), "x", true);
              const x1 = u.valToPos(Math.min(r.to, end), "x", true);
              if (x1 > x0) ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
            }
            for (const b of bands) {
              if (b.low === null || b.high === null) continue;
              const x0 = u.valToPos(Math.max(b.from, start), "x", true);
              const x1 = u.valToPos(Math.min(b.to, end), "x", true);
              const y0 = u.valToPos(b.high, "y", true);
              const y1 = u.valToPos(b.low, "y", true);
              ctx.fillStyle = dark ? "rgba(96,165,250,0.16)" : "rgba(37,99,235,0.10)";
              ctx.fillRect(x0, y0, Math.max(1, x1 - x0), Math.max(1, y1 - y0));
            }
            ctx.restore();
          },
        ],
        draw: [
          (u) => {
            if (!drawn) {
              drawn = true;
              onDrawn.current?.();
            }
            const ctx = u.ctx;
            const { left, top, width, height: h } = u.bbox;
            ctx.save();
            ctx.lineWidth = Math.max(1, uPlot.pxRatio);
            for (const t of thresholds) {
              const y = u.valToPos(t.value, "y", true);
              ctx.strokeStyle = "#dc2626";
              ctx.setLineDash([6 * uPlot.pxRatio, 4 * uPlot.pxRatio]);
              ctx.beginPath();
              ctx.moveTo(left, y);
              ctx.lineTo(left + width, y);
              ctx.stroke();
            }
            for (const m of markerRef.current) {
              if (m.t < start || m.t > end) continue;
              const x = u.valToPos(m.t, "x", true);
              ctx.strokeStyle = MARKER_COLORS[m.kind];
              ctx.setLineDash(m.kind === "deploy" || m.kind === "event" ? [] : [3 * uPlot.pxRatio, 3 * uPlot.pxRatio]);
              ctx.beginPath();
              ctx.moveTo(x, top);
              ctx.lineTo(x, top + h);
              ctx.stroke();
              ctx.fillStyle = MARKER_COLORS[m.kind];
              ctx.beginPath();
              ctx.arc(x, top + 4 * uPlot.pxRatio, 3.5 * uPlot.pxRatio, 0, 2 * Math.PI);
              ctx.fill();
            }
            ctx.restore();
          },
        ],
        setSelect: [
          (u) => {
            const sel = u.select;
            if (sel.width > 4 && onZoom.current) {
              const a = u.posToVal(sel.left, "x");
              const b = u.posToVal(sel.left + sel.width, "x");
              u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
              onZoom.current(a, b);
            }
          },
        ],
        setCursor: [
          (u) => {
            const tip = tooltip.current;
            if (!tip) return;
            const idx = u.cursor.idx;
            const left = u.cursor.left ?? -1;
            if (idx === null || idx === undefined || left < 0) {
              tip.hidden = true;
              return;
            }
            const t = u.data[0][idx];
            const nodes: HTMLElement[] = [div("tip-time", formatTime(t, tz))];
            let shown = 0;
            let more = 0;
            for (let i = 1; i < u.series.length; i++) {
              if (!u.series[i].show) continue;
              if (shown >= 25) {
                more++;
                continue;
              }
              const row = div("tip-row");
              const swatch = document.createElement("span");
              swatch.className = "swatch";
              swatch.style.background = colors[i - 1];
              const value = document.createElement("b");
              value.textContent = fmt(u.data[i][idx]);
              const name = document.createElement("span");
              name.className = "tip-name";
              name.textContent = String(u.series[i].label ?? "");
              row.append(swatch, name, value);
              nodes.push(row);
              shown++;
            }
            if (more) nodes.push(div("", `… ${more} more`));
            for (const m of markerRef.current) {
              if (Math.abs(u.valToPos(m.t, "x") - left) < 6) nodes.push(div("tip-marker", m.label));
            }
            tip.replaceChildren(...nodes);
            tip.hidden = false;
            const overWidth = u.over.clientWidth;
            const x = left + 16 + tip.offsetWidth > overWidth ? left - tip.offsetWidth - 12 : left + 16;
            tip.style.transform = `translate(${Math.max(0, x) + u.over.offsetLeft}px, ${
              (u.cursor.top ?? 0) + u.over.offsetTop + 8
            }px)`;
          },
        ],
      },
    };
    const u = new uPlot(opts, data as uPlot.AlignedData, el);
    plot.current = u;
    const resize = new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      if (Math.abs(w - u.width) > 1) u.setSize({ width: w, height });
    });
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
    // `hidden` is applied by toggle() without rebuilding the chart.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [data, range, colors, unit, start, end, tz, height, bands, thresholds, regions, dark]);

  const drawnMarkers = useRef(markers);
  useEffect(() => {
    if (drawnMarkers.current === markers) return;
    drawnMarkers.current = markers;
    plot.current?.redraw(false, false);
  }, [markers]);

  const toggle = (i: number) => {
    const next = new Set(hidden);
    if (next.has(i)) next.delete(i);
    else next.add(i);
    setHidden(next);
    plot.current?.setSeries(i + 1, { show: !next.has(i) });
  };
  const only = (i: number) => {
    const all = new Set(series.map((_, j) => j).filter((j) => j !== i));
    const next = hidden.size === all.size && !hidden.has(i) ? new Set<number>() : all;
    setHidden(next);
    series.forEach((_, j) => plot.current?.setSeries(j + 1, { show: !next.has(j) }));
  };

  const summary = useMemo(
    () => describe(title, series.length, range, unit, start, end, tz),
    [title, series.length, range, unit, start, end, tz],
  );
  const last = series.map((s) => {
    for (let i = s.points.length - 1; i >= 0; i--) if (s.points[i][1] !== null) return s.points[i][1];
    return null;
  });

  return (
    <figure className="chart" aria-label={title}>
      <div className="chart-plot" ref={box} role="img" aria-label={summary}>
        <div className="chart-tooltip" ref={tooltip} hidden role="presentation" />
      </div>
      {series.length > 0 && (
        <ul className="legend" aria-label={`${title}: series (press to show or hide)`}>
          {series.map((s, i) => (
            <li key={`${s.label}-${i}`}>
              <button
                type="button"
                className="legend-item"
                aria-pressed={!hidden.has(i)}
                onClick={(e) => (e.shiftKey || e.metaKey || e.ctrlKey ? only(i) : toggle(i))}
                title="Click to show or hide; Shift-click to show this one alone"
              >
                <span className="swatch" style={{ background: colors[i] }} aria-hidden="true" />
                <span className="legend-name">{s.label}</span>
                <span className="legend-last">{formatValue(last[i], unit)}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
      {markers.length > 0 && (
        <details className="markers">
          <summary>{markers.length} marker{markers.length === 1 ? "" : "s"}</summary>
          <ul>
            {markers.map((m, i) => (
              <li key={i}>
                <span className={`dot dot-${m.kind}`} aria-hidden="true" /> {formatTime(m.t, tz)} — {m.label}
              </li>
            ))}
          </ul>
        </details>
      )}
    </figure>
  );
}

function describe(title: string, count: number, [lo, hi]: [number, number], unit: Unit, start: number, end: number, tz: string): string {
  if (!count) return `${title}: no data`;
  return `${title}: ${count} series from ${formatTime(start, tz)} to ${formatTime(end, tz)}, values ${formatValue(lo, unit)} to ${formatValue(hi, unit)}`;
}

function div(className: string, text?: string): HTMLDivElement {
  const el = document.createElement("div");
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}
