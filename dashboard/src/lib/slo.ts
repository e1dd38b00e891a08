// SLOs and availability: API shapes, the SLO form (validated as the API
// does, so mistakes show before saving) and display helpers.

import { LABEL_RE, NAME_RE, parsePairs, pairsText } from "./ruleForm";
import { parseDuration } from "./time";
import type { Labels, Stored } from "./types";

export const METRIC_RE = /^[a-zA-Z_][a-zA-Z0-9_.:]{0,199}$/;

export interface SeriesMatch {
  metric: string;
  match_labels?: Labels;
}

export interface SloSpec {
  name: string;
  description?: string;
  objective: number;
  window: number;
  selector?: { match_labels?: Labels; hosts?: string[] };
  indicator: { kind: "ratio"; good: SeriesMatch; total: SeriesMatch; counter?: boolean } | { kind: "availability"; gap?: number };
  labels?: Labels;
}

export interface SloStatus {
  start: number;
  end: number;
  good: number;
  total: number;
  sli_percent: number | null;
  attained: boolean | null;
  error_budget: number;
  error_budget_remaining: number | null;
  burn_rates: Record<string, number | null>;
}

export type StoredSlo = Stored<SloSpec> & { status?: SloStatus };

export interface OutageOut {
  start: number;
  end: number;
  seconds: number;
  ongoing: boolean;
}

export interface AvailabilityOut {
  uptime_percent: number | null;
  monitored_seconds: number;
  downtime_seconds: number;
  outages: number;
  down_at_end: boolean;
  longest_outage: OutageOut | null;
  mttr_seconds: number | null;
}

export interface HostAvailability extends AvailabilityOut {
  host: string;
  labels: Labels;
  outage_list?: OutageOut[];
}

export interface GroupAvailability extends AvailabilityOut {
  group: Labels;
  hosts: HostAvailability[];
}

export interface AvailabilityReport {
  start: number;
  end: number;
  gap: number;
  group_by: string | null;
  groups: GroupAvailability[];
}

export interface SloForm {
  name: string;
  description: string;
  objective: string;
  window: string;
  kind: "ratio" | "availability";
  good: string;
  goodLabels: string;
  total: string;
  totalLabels: string;
  counter: boolean;
  gap: string;
  hostLabels: string;
}

export function emptySloForm(): SloForm {
  return {
    name: "",
    description: "",
    objective: "99.9",
    window: "30d",
    kind: "availability",
    good: "",
    goodLabels: "",
    total: "",
    totalLabels: "",
    counter: false,
    gap: "5m",
    hostLabels: "",
  };
}

/** ``90 s``, ``30d``: seconds as the form writes them. */
export function durationText(seconds: number): string {
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]] as const) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

export function fromSloSpec(spec: SloSpec): SloForm {
  const f = emptySloForm();
  f.name = spec.name;
  f.description = spec.description ?? "";
  f.objective = String(spec.objective);
  f.window = durationText(spec.window);
  f.hostLabels = pairsText(spec.selector?.match_labels, ", ");
  if (spec.indicator.kind === "ratio") {
    f.kind = "ratio";
    f.good = spec.indicator.good.metric;
    f.goodLabels = pairsText(spec.indicator.good.match_labels, ", ");
    f.total = spec.indicator.total.metric;
    f.totalLabels = pairsText(spec.indicator.total.match_labels, ", ");
    f.counter = spec.indicator.counter ?? false;
  } else {
    f.kind = "availability";
    f.gap = durationText(spec.indicator.gap ?? 300);
  }
  return f;
}

export function toSloSpec(f: SloForm): { spec: SloSpec; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  if (!NAME_RE.test(f.name)) errors.name = "lower-case letters, digits and dashes (a DNS name)";
  const objective = Number(f.objective);
  if (!f.objective.trim() || !Number.isFinite(objective) || objective <= 0 || objective >= 100)
    errors.objective = "a percentage above 0 and below 100, like 99.9";
  const window = parseDuration(f.window);
  if (!window || window < 60 || window > 400 * 86400) errors.window = "a duration from 1m to 400d, like 30d";
  const match_labels = parsePairs(f.hostLabels, "hostLabels", errors);
  let indicator: SloSpec["indicator"];
  if (f.kind === "ratio") {
    if (!METRIC_RE.test(f.good)) errors.good = "a metric name";
    if (!METRIC_RE.test(f.total)) errors.total = "a metric name";
    indicator = {
      kind: "ratio",
      good: { metric: f.good, match_labels: parsePairs(f.goodLabels, "goodLabels", errors, false) },
      total: { metric: f.total, match_labels: parsePairs(f.totalLabels, "totalLabels", errors, false) },
      counter: f.counter,
    };
  } else {
    const gap = parseDuration(f.gap);
    if (!gap || gap > 86400) errors.gap = "a duration up to 1d, like 5m";
    indicator = { kind: "availability", gap: gap ?? 300 };
  }
  for (const k of Object.keys(match_labels)) if (!LABEL_RE.test(k)) errors.hostLabels = `“${k}” is not a label name`;
  const spec: SloSpec = {
    name: f.name,
    description: f.description,
    objective,
    window: window ?? 0,
    selector: { match_labels },
    indicator,
  };
  return { spec, errors };
}

/** API field errors (``objective``, ``indicator.good.metric``) as form fields. */
export function sloFieldOf(loc: string): string {
  const clean = loc.replace(/^body\./, "").replace(/^indicator\.(ratio|availability)\./, "indicator.");
  if (clean.startsWith("indicator.good")) return "good";
  if (clean.startsWith("indicator.total")) return "total";
  if (clean.startsWith("indicator.gap")) return "gap";
  if (clean.startsWith("selector")) return "hostLabels";
  return clean.split(".")[0];
}

export function percent(x: number | null | undefined, digits = 3): string {
  return x === null || x === undefined ? "—" : `${x.toFixed(digits)}%`;
}

/** ``2h 5m``, ``45s``: a length of time for tables. */
export function span(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return "—";
  let s = Math.round(seconds);
  const parts: string[] = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  if (s || !parts.length) parts.push(`${s}s`);
  return parts.slice(0, 2).join(" ");
}

/** The group's name: ``role=web``, or "All hosts". */
export function groupName(group: Labels): string {
  const parts = Object.entries(group).map(([k, v]) => `${k}=${v || "(none)"}`);
  return parts.length ? parts.join(", ") : "All hosts";
}

/** The budget left as a share for a meter (0..1, clamped). */
export function budgetShare(status: SloStatus | undefined): number | null {
  const left = status?.error_budget_remaining;
  return left === null || left === undefined ? null : Math.min(1, Math.max(0, left));
}
