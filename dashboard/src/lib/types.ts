// Shapes of the API's answers (docs/api.md, docs/alerts.md, docs/notifications.md).

export type Labels = Record<string, string>;
export type Point = [number, number | null];

export interface Whoami {
  key_id: string;
  name: string;
  scopes: string[];
  grants: { ingest: boolean; read: boolean; admin: boolean; rules?: boolean };
}

export interface OverviewHost {
  host: string;
  labels: Labels;
  first_seen: string;
  last_seen: string;
  last_sample: string;
  status: "up" | "stale" | "down";
  open_alerts: number;
  firing_alerts: number;
  latest: Record<"cpu" | "mem" | "disk", number | null>;
  spark: Record<"cpu" | "mem" | "disk", [number, number][]>;
}

export interface Overview {
  total: number;
  offset: number;
  limit: number;
  counts: Record<"up" | "stale" | "down", number>;
  spark: { start: number; end: number; step: number };
  hosts: OverviewHost[];
}

export interface SeriesData {
  host: string;
  metric: string;
  labels: Labels;
  points: Point[];
}

export interface QueryResult {
  series: SeriesData[];
  step: number | null;
  source: string;
  agg: string | null;
  start: number;
  end: number;
}

export interface Expected {
  low: number | null;
  high: number | null;
  centre: number | null;
}

export interface Alert {
  id: number;
  fingerprint: string;
  rule_id: number;
  rule_name: string;
  kind: string;
  host: string;
  series_id: number | null;
  metric: string | null;
  labels: Labels;
  annotations: Labels;
  channels: string[];
  severity: string;
  state: "pending" | "firing" | "nodata" | "resolved" | "normal";
  started_at: string;
  fired_at: string | null;
  resolved_at: string | null;
  value: number | null;
  expected: Expected;
  score: number | null;
  explanation: string | null;
  contributors: string[];
  acked_at: string | null;
  acked_by: string | null;
  ack_comment: string | null;
  updated_at: string;
}

export interface Transition {
  seq: number;
  from: string;
  to: string;
  at: string;
  value: number | null;
  expected: Expected;
  score: number | null;
  explanation: string | null;
}

export interface AlertDetail extends Alert {
  transitions: Transition[];
}

export interface AlertList {
  items: Alert[];
  next_before_id: number | null;
}

export interface Stored<T> {
  id: number;
  name: string;
  version: number;
  source: string;
  created_at: string;
  updated_at: string;
  spec: T;
}

export type RuleKind = "threshold" | "baseline" | "anomaly" | "absence" | "forecast" | "burn_rate";

export interface RuleSpec {
  name: string;
  description?: string;
  enabled?: boolean;
  metric?: string | null;
  match_series_labels?: Labels;
  selector?: { match_labels?: Labels; hosts?: string[] };
  params: { kind: RuleKind } & Record<string, unknown>;
  for?: number;
  keep_firing_for?: number;
  severity?: string;
  labels?: Labels;
  annotations?: Labels;
  channels?: string[];
}

export interface ChannelSpec {
  name: string;
  enabled?: boolean;
  config: { type: "slack" | "email" | "webhook" } & Record<string, unknown>;
  match?: { labels?: Labels; min_severity?: string } | null;
  group_by?: string[];
  group_wait?: number;
  group_interval?: number;
  repeat_interval?: number;
}

export interface BacktestTransition {
  at: string;
  host: string;
  metric: string | null;
  labels: Labels;
  from: string;
  to: string;
  value: number | null;
  expected: Expected | null;
  explanation: string | null;
}

export interface BacktestResult {
  rule: string;
  kind: string;
  start: string;
  end: string;
  resolution: string;
  series: number;
  truncated: boolean;
  points: number;
  counts: Record<string, number>;
  transitions: BacktestTransition[];
}

export interface Matcher {
  name: string;
  op: "=" | "!=" | "=~" | "!~";
  value: string;
}

export interface Silence {
  id: string;
  matchers: Matcher[];
  starts_at: string;
  ends_at: string;
  created_by: string;
  comment: string;
  state: "active" | "pending" | "expired";
}

export interface MuteWindow {
  id: number;
  name: string;
  active_now: boolean;
  spec: {
    name: string;
    enabled: boolean;
    matchers: Matcher[];
    days: number[];
    start: string;
    end: string;
    timezone: string;
    comment: string;
  };
}

export interface Delivery {
  id: number;
  notification_id: number | null;
  channel: string;
  channel_type: string;
  endpoint: string;
  attempt: number;
  status: string;
  http_status: number | null;
  error: string | null;
  duration_ms: number | null;
  at: string;
  kind: string | null;
}

export interface DeadLetters {
  queue: string;
  failed_total: number;
  items: {
    notification_id: number;
    channel: string;
    channel_type: string;
    kind: string;
    attempts: number;
    error: string | null;
    failed_at: string | null;
    alerts: { fingerprint: string; status: string; rule: string; host: string; severity: string }[];
  }[];
}

export interface ApiKey {
  key_id: string;
  name: string;
  scopes: string[];
  created_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
  key?: string;
}

export interface NazarEvent {
  id: number;
  kind: string;
  title: string;
  service: string | null;
  version: string | null;
  hosts: string[];
  start: string;
  end: string | null;
  link: string | null;
  labels: Labels;
}

/** One series' forecast (GET /api/v1/forecast). */
export interface SeriesForecast {
  host: string;
  metric: string;
  labels: Labels;
  status: "crossing" | "crossed" | "not_crossing" | "insufficient_data";
  summary: string;
  reason: string | null;
  crossing_at: string | null;
  crossing_ts: number | null;
  eta_seconds: number | null;
  eta_days: number | null;
  within_horizon: boolean;
  interval: { earliest: string | null; latest: string | null; earliest_ts: number | null; latest_ts: number | null };
  trend: {
    level: number | null;
    slope_per_day: number | null;
    slope_per_day_low: number | null;
    slope_per_day_high: number | null;
    noise: number | null;
    daily_amplitude: number | null;
    level_shift_at?: string | null;
  };
  history: { source: string; points: number; first: string | null; last: string | null };
  /** The projected line; null for a fleet query (without host). */
  projection: [number, number | null][] | null;
}

export interface ForecastResult {
  metric: string;
  threshold: number;
  direction: "above" | "below";
  horizon_seconds: number;
  lookback_seconds: number;
  now: string;
  now_ts: number;
  forecasts: SeriesForecast[];
  truncated: boolean;
}
