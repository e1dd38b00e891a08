// The rule form's state, its validation (the API's rules, so mistakes show
// before saving) and its conversion to and from the API's rule spec.

import type { FieldError } from "./api";
import { parseDuration } from "./time";
import type { Labels, RuleKind, RuleSpec } from "./types";

export const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const METRIC_RE = /^[a-zA-Z_][a-zA-Z0-9_.:]{0,199}$/;
export const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]{0,99}$/;
export const SEVERITIES = ["info", "warning", "critical"] as const;
export const KINDS: RuleKind[] = ["threshold", "baseline", "anomaly", "absence", "forecast", "burn_rate"];
/** The SRE workbook's window pairs (long/short@factor), the API's default. */
export const DEFAULT_BURN_WINDOWS = "1h/5m@14.4, 6h/30m@6";

export interface RuleForm {
  name: string;
  description: string;
  enabled: boolean;
  kind: RuleKind;
  metric: string;
  seriesLabels: string;
  hostLabels: string;
  hosts: string;
  comparator: string;
  value: string;
  recovery: string;
  band: string;
  direction: string;
  seasonality: string;
  minHistory: string;
  window: string;
  scoreThreshold: string;
  minFraction: string;
  recentPoints: string;
  trainingWindow: string;
  retrainEvery: string;
  after: string;
  horizon: string;
  recoveryHorizon: string;
  lookback: string;
  every: string;
  slo: string;
  burnWindows: string;
  forSeconds: string;
  keepFiringFor: string;
  severity: string;
  labels: string;
  annotations: string;
  channels: string[];
  /** Fields of the stored spec the form does not show (kept as they are). */
  extra: Record<string, unknown>;
}

export function emptyForm(): RuleForm {
  return {
    name: "",
    description: "",
    enabled: true,
    kind: "threshold",
    metric: "",
    seriesLabels: "",
    hostLabels: "",
    hosts: "",
    comparator: ">",
    value: "",
    recovery: "",
    band: "4",
    direction: "both",
    seasonality: "auto",
    minHistory: "86400",
    window: "604800",
    scoreThreshold: "0.5",
    minFraction: "0.5",
    recentPoints: "3",
    trainingWindow: "604800",
    retrainEvery: "3600",
    after: "300",
    horizon: "7d",
    recoveryHorizon: "",
    lookback: "7d",
    every: "15m",
    slo: "",
    burnWindows: DEFAULT_BURN_WINDOWS,
    forSeconds: "0",
    keepFiringFor: "0",
    severity: "warning",
    labels: "",
    annotations: "",
    channels: [],
    extra: {},
  };
}

/** A new rule's form pre-filled from a link (``?kind=forecast&metric=…&value=…``). */
export function seededForm(params: URLSearchParams): RuleForm {
  const f = emptyForm();
  const kind = params.get("kind") as RuleKind | null;
  if (kind && KINDS.includes(kind)) f.kind = kind;
  if (f.kind === "forecast") f.direction = params.get("direction") === "below" ? "below" : "above";
  f.metric = params.get("metric") ?? "";
  f.value = params.get("value") ?? "";
  return f;
}

export interface BurnWindow {
  long: number;
  short: number;
  factor: number;
}

function seconds(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)?$/.exec(text.trim());
  if (!m) return null;
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? "s") as "s"];
}

function short(sec: number): string {
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]] as const) if (sec >= size && sec % size === 0) return `${sec / size}${unit}`;
  return `${sec}s`;
}

/** ``1h/5m@14.4, 6h/30m@6``: window pairs (long/short) and their burn-rate factors. */
export function parseBurnWindows(text: string, errors: Record<string, string>): BurnWindow[] {
  const out: BurnWindow[] = [];
  for (const part of text.split(",").map((x) => x.trim()).filter(Boolean)) {
    const m = /^([^/@\s]+)\s*\/\s*([^@\s]+)\s*@\s*([\d.]+)x?$/.exec(part);
    const long = m ? seconds(m[1]) : null;
    const shortW = m ? seconds(m[2]) : null;
    const factor = m ? Number(m[3]) : NaN;
    if (!m || !long || !shortW || !(factor > 0)) {
      errors.burnWindows = `“${part}” is not long/short@factor, like 1h/5m@14.4`;
      continue;
    }
    if (shortW > long) errors.burnWindows = `in “${part}” the short window is longer than the long one`;
    out.push({ long, short: shortW, factor });
  }
  if (!out.length && !errors.burnWindows) errors.burnWindows = "at least one pair, like 1h/5m@14.4";
  return out;
}

export function burnWindowsText(windows: BurnWindow[]): string {
  return windows.map((w) => `${short(w.long)}/${short(w.short)}@${w.factor}`).join(", ");
}

/** ``k=v`` pairs, one per line or comma-separated. */
export function parsePairs(text: string, field: string, errors: Record<string, string>, checkNames = true): Labels {
  const out: Labels = {};
  for (const raw of text.split(/\n|,(?=\s*[A-Za-z_][A-Za-z0-9_]*\s*=)/)) {
    const part = raw.trim();
    if (!part) continue;
    const i = part.indexOf("=");
    if (i <= 0) {
      errors[field] = `“${part}” is not name=value`;
      continue;
    }
    const k = part.slice(0, i).trim();
    if (checkNames && !LABEL_RE.test(k)) errors[field] = `“${k}” is not a valid label name`;
    out[k] = part.slice(i + 1).trim();
  }
  return out;
}

export function pairsText(labels: Labels | undefined, sep = "\n"): string {
  return Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(sep);
}

function num(text: string, field: string, errors: Record<string, string>, check: (n: number) => string | null): number | undefined {
  if (text.trim() === "") {
    errors[field] = "required";
    return undefined;
  }
  const n = Number(text);
  if (!Number.isFinite(n)) {
    errors[field] = "not a number";
    return undefined;
  }
  const problem = check(n);
  if (problem) errors[field] = problem;
  return n;
}

/** Seconds of a duration field (``7d``, ``36h``, ``900``); an error when invalid. */
function duration(text: string, field: string, errors: Record<string, string>, min = 0, max = Infinity): number | undefined {
  if (text.trim() === "") {
    errors[field] = "required";
    return undefined;
  }
  const n = parseDuration(text);
  if (n === null || n <= 0) {
    errors[field] = "a duration like 7d, 36h or 900 (seconds)";
    return undefined;
  }
  if (n < min || n > max) errors[field] = `between ${describeSeconds(min)} and ${describeSeconds(max)}`;
  return n;
}

/** ``604800`` → ``7d``, ``5400`` → ``90m``; the form shows durations this way. */
export function describeSeconds(n: number): string {
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]] as const) {
    if (n >= size && n % size === 0) return `${n / size}${unit}`;
  }
  return String(n);
}

const positive = (n: number) => (n > 0 ? null : "must be greater than 0");
const nonNegative = (n: number) => (n >= 0 ? null : "must be 0 or more");

/** The API spec of the form, and the problems found (field -> message). */
export function toSpec(f: RuleForm): { spec: RuleSpec; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  if (!NAME_RE.test(f.name)) errors.name = "lower-case letters, digits and dashes, starting and ending with a letter or digit (at most 63)";
  const metric = f.metric.trim();
  if (metric && !METRIC_RE.test(metric)) errors.metric = "not a valid metric name";
  if (!metric && f.kind !== "absence" && f.kind !== "burn_rate") errors.metric = `a ${f.kind} rule needs a metric`;
  if (metric && f.kind === "burn_rate") errors.metric = "a burn_rate rule takes its metrics from its SLO: leave this empty";
  let params: RuleSpec["params"];
  switch (f.kind) {
    case "threshold": {
      params = { kind: "threshold", comparator: f.comparator, value: num(f.value, "value", errors, () => null) };
      if (f.recovery.trim()) params.recovery_value = num(f.recovery, "recovery", errors, () => null);
      break;
    }
    case "baseline":
      params = {
        kind: "baseline",
        band: num(f.band, "band", errors, positive),
        direction: f.direction,
        seasonality: f.seasonality,
        min_history: num(f.minHistory, "minHistory", errors, nonNegative),
        window: num(f.window, "window", errors, positive),
      };
      break;
    case "anomaly":
      params = {
        kind: "anomaly",
        score_threshold: num(f.scoreThreshold, "scoreThreshold", errors, (n) => (n >= 0 && n <= 1 ? null : "between 0 and 1")),
        min_fraction: num(f.minFraction, "minFraction", errors, (n) => (n > 0 && n <= 1 ? null : "more than 0, at most 1")),
        recent_points: num(f.recentPoints, "recentPoints", errors, (n) => (Number.isInteger(n) && n >= 1 ? null : "a whole number, at least 1")),
        training_window: num(f.trainingWindow, "trainingWindow", errors, positive),
        retrain_every: num(f.retrainEvery, "retrainEvery", errors, positive),
      };
      break;
    case "forecast": {
      const horizon = duration(f.horizon, "horizon", errors, 1, 365 * 86400);
      params = {
        kind: "forecast",
        value: num(f.value, "value", errors, () => null),
        direction: f.direction === "below" ? "below" : "above",
        horizon,
        lookback: duration(f.lookback, "lookback", errors, 12 * 3600, 90 * 86400),
        every: duration(f.every, "every", errors, 1, 86400),
      };
      if (f.recoveryHorizon.trim()) {
        const recovery = duration(f.recoveryHorizon, "recoveryHorizon", errors, 1, 365 * 86400);
        if (recovery !== undefined && horizon !== undefined && recovery < horizon) errors.recoveryHorizon = "at least the horizon";
        params.recovery_horizon = recovery;
      }
      break;
    }
    case "burn_rate":
      if (!NAME_RE.test(f.slo)) errors.slo = "the name of an SLO";
      params = { kind: "burn_rate", slo: f.slo, windows: parseBurnWindows(f.burnWindows, errors) };
      break;
    default:
      params = { kind: "absence", after: num(f.after, "after", errors, positive) };
  }
  const hosts = f.hosts.split(/[\s,]+/).filter(Boolean);
  const spec: RuleSpec = {
    ...f.extra,
    name: f.name,
    description: f.description,
    enabled: f.enabled,
    metric: metric || null,
    match_series_labels: parsePairs(f.seriesLabels, "seriesLabels", errors, false),
    selector: { match_labels: parsePairs(f.hostLabels, "hostLabels", errors), hosts },
    params,
    for: num(f.forSeconds || "0", "forSeconds", errors, nonNegative),
    keep_firing_for: num(f.keepFiringFor || "0", "keepFiringFor", errors, nonNegative),
    severity: f.severity,
    labels: parsePairs(f.labels, "labels", errors, false),
    annotations: parsePairs(f.annotations, "annotations", errors, false),
    channels: f.channels,
  };
  return { spec, errors };
}

export function fromSpec(spec: RuleSpec): RuleForm {
  const f = emptyForm();
  const p = spec.params as Record<string, unknown>;
  const s = (v: unknown, fallback: string) => (v === undefined || v === null ? fallback : String(v));
  const known = new Set(["name", "description", "enabled", "metric", "match_series_labels", "selector", "params", "for", "keep_firing_for", "severity", "labels", "annotations", "channels"]);
  return {
    ...f,
    name: spec.name,
    description: spec.description ?? "",
    enabled: spec.enabled ?? true,
    kind: spec.params.kind,
    metric: spec.metric ?? "",
    seriesLabels: pairsText(spec.match_series_labels),
    hostLabels: pairsText(spec.selector?.match_labels),
    hosts: (spec.selector?.hosts ?? []).join(", "),
    comparator: s(p.comparator, f.comparator),
    value: s(p.value, ""),
    recovery: s(p.recovery_value, ""),
    band: s(p.band, f.band),
    direction: s(p.direction, f.direction),
    seasonality: s(p.seasonality, f.seasonality),
    minHistory: s(p.min_history, f.minHistory),
    window: s(p.window, f.window),
    scoreThreshold: s(p.score_threshold, f.scoreThreshold),
    minFraction: s(p.min_fraction, f.minFraction),
    recentPoints: s(p.recent_points, f.recentPoints),
    trainingWindow: s(p.training_window, f.trainingWindow),
    retrainEvery: s(p.retrain_every, f.retrainEvery),
    after: s(p.after, f.after),
    horizon: typeof p.horizon === "number" ? describeSeconds(p.horizon) : f.horizon,
    recoveryHorizon: typeof p.recovery_horizon === "number" ? describeSeconds(p.recovery_horizon) : "",
    lookback: typeof p.lookback === "number" ? describeSeconds(p.lookback) : f.lookback,
    every: typeof p.every === "number" ? describeSeconds(p.every) : f.every,
    slo: s(p.slo, ""),
    burnWindows: Array.isArray(p.windows) ? burnWindowsText(p.windows as BurnWindow[]) : f.burnWindows,
    forSeconds: s(spec.for, "0"),
    keepFiringFor: s(spec.keep_firing_for, "0"),
    severity: spec.severity ?? "warning",
    labels: pairsText(spec.labels),
    annotations: pairsText(spec.annotations),
    channels: spec.channels ?? [],
    extra: Object.fromEntries(Object.entries(spec).filter(([k]) => !known.has(k))),
  };
}

/** The form field an API error location (``params.value``) belongs to. */
export function fieldOf(loc: string): string {
  const map: Record<string, string> = {
    name: "name",
    metric: "metric",
    "params.value": "value",
    "params.recovery_value": "recovery",
    "params.band": "band",
    "params.min_history": "minHistory",
    "params.window": "window",
    "params.score_threshold": "scoreThreshold",
    "params.min_fraction": "minFraction",
    "params.recent_points": "recentPoints",
    "params.training_window": "trainingWindow",
    "params.retrain_every": "retrainEvery",
    "params.after": "after",
    "params.horizon": "horizon",
    "params.recovery_horizon": "recoveryHorizon",
    "params.lookback": "lookback",
    "params.every": "every",
    "params.slo": "slo",
    "params.windows": "burnWindows",
    for: "forSeconds",
    keep_firing_for: "keepFiringFor",
    severity: "severity",
    labels: "labels",
    annotations: "annotations",
    match_series_labels: "seriesLabels",
    "selector.match_labels": "hostLabels",
    "selector.hosts": "hosts",
  };
  const clean = loc.replace(/^body\./, "").replace(/^params\.(threshold|baseline|anomaly|absence|forecast|burn_rate)\./, "params.");
  for (const [prefix, field] of Object.entries(map)) if (clean === prefix || clean.startsWith(`${prefix}.`)) return field;
  return "form";
}

export function serverErrors(errors: FieldError[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of errors) {
    const field = fieldOf(e.loc);
    out[field] = out[field] ? `${out[field]}; ${e.msg}` : e.msg;
  }
  return out;
}

/** Who manages a rule, from its source and the operator's annotation. */
export function managedBy(rule: { source: string; spec: RuleSpec }): string | null {
  if (rule.source === "api") return null;
  const origin = rule.spec.annotations?.source;
  if (rule.source === "kubernetes") return origin?.startsWith("kubernetes:") ? `Kubernetes AlertRule ${origin.slice("kubernetes:".length)}` : "Kubernetes";
  return origin ?? rule.source;
}
