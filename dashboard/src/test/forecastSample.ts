// A forecast as GET /api/v1/forecast returns it, for tests.

import type { SeriesForecast } from "../lib/types";

const NOW = 1_800_000_000;
const DAY = 86400;

/** web-1's disk: 75 % now, 90 % in 6 days (5 to 7). */
export function sample(over: Partial<SeriesForecast> = {}): SeriesForecast {
  return {
    host: "web-1",
    metric: "disk.used_percent",
    labels: { mount: "/" },
    status: "crossing",
    summary: "disk.used_percent on web-1 is expected to reach 90 in 6.0 days ± 1.0",
    reason: null,
    crossing_at: new Date((NOW + 6 * DAY) * 1000).toISOString(),
    crossing_ts: NOW + 6 * DAY,
    eta_seconds: 6 * DAY,
    eta_days: 6,
    within_horizon: true,
    interval: { earliest: null, latest: null, earliest_ts: NOW + 5 * DAY, latest_ts: NOW + 7 * DAY },
    trend: { level: 75, slope_per_day: 2.5, slope_per_day_low: 2.2, slope_per_day_high: 2.8, noise: 0.4, daily_amplitude: 3 },
    history: { source: "1h", points: 336, first: null, last: null },
    projection: [
      [NOW, 75],
      [NOW + 3 * DAY, 82.5],
      [NOW + 7 * DAY, 92.5],
    ],
    ...over,
  };
}

