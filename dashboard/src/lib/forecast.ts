// Capacity forecasts (GET /api/v1/forecast) as chart overlays and short texts.

import type { Marker, Region, Threshold } from "../components/Chart";
import { qs } from "./api";
import type { Labels, Point, SeriesForecast } from "./types";

export interface ForecastQuery {
  metric: string;
  threshold: string;
  direction: string;
  horizon: string;
  lookback: string;
  host?: string;
  labels?: string[];
  within?: boolean;
}

export function forecastUrl(q: ForecastQuery): string {
  return `/api/v1/forecast${qs({
    metric: q.metric,
    threshold: q.threshold,
    direction: q.direction === "below" ? "below" : null,
    horizon: q.horizon,
    lookback: q.lookback,
    host: q.host ?? null,
    labels: q.labels ?? [],
    within: q.within ? "true" : null,
    limit: 200,
  })}`;
}

/** ``k=v`` filters selecting exactly this series' labels. */
export function labelFilters(labels: Labels): string[] {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`);
}

const DAY = 86400;

/** "in 6.1 days", "in 5 hours", "now" (already crossed), "—". */
export function etaText(f: SeriesForecast): string {
  if (f.status === "crossed") return "now (crossed)";
  if (f.eta_seconds === null) return "—";
  const s = f.eta_seconds;
  if (s >= 2 * DAY) return `in ${(s / DAY).toFixed(s >= 10 * DAY ? 0 : 1)} days`;
  return `in ${Math.max(1, Math.round(s / 3600))} hours`;
}

/** The crossing interval in days from now: "5.2–7.0 days", "at least 3.1 days". */
export function intervalText(f: SeriesForecast, now: number): string {
  const { earliest_ts: lo, latest_ts: hi } = f.interval;
  if (f.status !== "crossing" || lo === null) return "";
  const d = (t: number) => (Math.max(0, t - now) / DAY).toFixed(1);
  return hi === null ? `at least ${d(lo)} days, possibly never` : `${d(lo)}–${d(hi)} days`;
}

export interface Overlay {
  projection: Point[];
  markers: Marker[];
  regions: Region[];
  thresholds: Threshold[];
}

/** What a forecast adds to the series' chart: the projected line (up to
 * ``until``), the threshold, a marker at the expected crossing and its
 * interval shaded. */
export function overlay(f: SeriesForecast, threshold: number, format: (t: number) => string, until = Infinity): Overlay {
  const markers: Marker[] = [];
  const regions: Region[] = [];
  const projection: Point[] = (f.projection ?? []).filter(([t]) => t <= until).map(([t, v]) => [t, v]);
  if (f.status === "crossing" && f.crossing_ts !== null) {
    const { earliest_ts: lo, latest_ts: hi } = f.interval;
    // an interval narrower than an hour is not worth a word
    const wide = lo !== null && (hi === null || hi - lo >= 3600);
    const between = wide ? ` (between ${format(lo)} and ${hi === null ? "never" : format(hi)})` : "";
    markers.push({ t: f.crossing_ts, kind: "forecast", label: `expected to reach ${threshold}${between}` });
    if (lo !== null && (hi !== null || until !== Infinity)) regions.push({ from: lo, to: Math.min(hi ?? until, until), label: "crossing interval" });
  }
  return { projection, markers, regions, thresholds: [{ value: threshold, label: "threshold" }] };
}

/** Where a forecast's chart ends: a little past the expected crossing, and
 * at least a quarter of the history ahead (the whole projection otherwise). */
export function chartEnd(f: SeriesForecast, now: number, lookback: number): number {
  const line = f.projection ?? [];
  const last = line.length ? line[line.length - 1][0] : now;
  const ahead = now + lookback / 4;
  if (f.crossing_ts === null) return Math.max(ahead, Math.min(last, now + lookback));
  const past = Math.max(f.crossing_ts, f.interval.latest_ts ?? f.crossing_ts);
  return Math.max(ahead, past + 0.15 * (past - now));
}
