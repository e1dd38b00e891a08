// Units of metrics and axis scales: ticks at 1, 2, 5 x 10^n of the shown
// unit; bytes in binary units (KiB, MiB, GiB ...), so ticks read 200 MiB,
// 400 MiB, never 953.7 MiB.

export type Unit = "percent" | "bytes" | "bytes/s" | "ops/s" | "seconds" | "/s" | "";

/** The unit of a metric, from its name's suffix. */
export function unitOf(metric: string): Unit {
  const m = metric.toLowerCase();
  if (m.endsWith("_percent") || m.endsWith(".percent") || m.endsWith("_ratio_percent")) return "percent";
  if (m.endsWith("_bytes_per_sec") || m.endsWith("bytes_per_second")) return "bytes/s";
  if (m.endsWith("_bytes") || m.endsWith("_bytes_total") || m.endsWith(".bytes")) return "bytes";
  if (m.endsWith("_ops_per_sec")) return "ops/s";
  if (m.endsWith("_seconds") || m.endsWith("_seconds_total")) return "seconds";
  if (m.endsWith("_per_sec")) return "/s";
  return "";
}

const BINARY = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
const SI = ["", "k", "M", "G", "T", "P", "E"];

export function isBytes(unit: Unit): boolean {
  return unit === "bytes" || unit === "bytes/s";
}

/** Base and exponent of the display unit for magnitude ``m`` (1024^k or 1000^k). */
function prefix(m: number, bytes: boolean): { base: number; k: number } {
  const base = bytes ? 1024 : 1000;
  let k = 0;
  let v = Math.abs(m);
  while (v >= base && k < 6) {
    v /= base;
    k++;
  }
  return { base, k };
}

function trim(n: number, digits: number): string {
  const s = n.toFixed(digits);
  return s.includes(".") ? s.replace(/\.?0+$/, "") : s;
}

function suffix(unit: Unit, k: number, bytes: boolean): string {
  if (bytes) return ` ${BINARY[k]}${unit === "bytes/s" ? "/s" : ""}`;
  const p = SI[k];
  switch (unit) {
    case "percent":
      return "%";
    case "seconds":
      return `${p ? " " + p : " "}s`;
    case "ops/s":
      return `${p ? " " + p : " "}ops/s`;
    case "/s":
      return `${p}/s`;
    default:
      return p;
  }
}

/** A value in its unit, e.g. 1536 bytes -> "1.5 KiB", 0.5 percent -> "0.5%". */
export function formatValue(value: number | null | undefined, unit: Unit, digits = 3): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  const bytes = isBytes(unit);
  if (unit === "percent") return `${trim(value, Math.abs(value) >= 100 ? 1 : 2)}%`;
  const { base, k } = prefix(value, bytes);
  const scaled = value / base ** k;
  const abs = Math.abs(scaled);
  const places = abs === 0 ? 0 : Math.max(0, digits - 1 - Math.floor(Math.log10(abs)));
  return `${trim(scaled, Math.min(places, 6))}${suffix(unit, k, bytes)}`;
}

export interface Scale {
  min: number;
  max: number;
  step: number;
  ticks: number[];
}

/** Steps 1, 2, 5 x 10^n of the display unit (binary units for bytes). */
export function niceStep(span: number, ticks: number, bytes: boolean): number {
  const raw = span / Math.max(1, ticks);
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const { base, k } = prefix(raw, bytes);
  const unit = base ** k;
  const inUnit = raw / unit;
  const mag = 10 ** Math.floor(Math.log10(inUnit));
  for (const m of [1, 2, 5, 10]) {
    if (m * mag >= inUnit - 1e-12 * inUnit) return m * mag * unit;
  }
  return 10 * mag * unit;
}

/**
 * The axis scale for data in [lo, hi]: about ``ticks`` intervals, bounds on
 * a tick at or beyond the data (the top tick is never below the maximum),
 * zero included for non-negative data of percent and byte units.
 */
export function niceScale(lo: number, hi: number, unit: Unit, ticks = 5): Scale {
  let a = Number.isFinite(lo) ? lo : 0;
  let b = Number.isFinite(hi) ? hi : 1;
  if (a > b) [a, b] = [b, a];
  if (a >= 0 && (unit === "percent" || isBytes(unit) || unit === "ops/s" || a < b * 0.5)) a = 0;
  if (a === b) {
    if (a === 0) b = 1;
    else if (a > 0) a = 0;
    else b = 0;
  }
  const bytes = isBytes(unit);
  let step = niceStep(b - a, ticks, bytes);
  let min = Math.floor(a / step) * step;
  let max = Math.ceil(b / step) * step;
  // Recompute once with the real span so the count stays near ``ticks``.
  if ((max - min) / step > ticks * 1.6) {
    step = niceStep(max - min, ticks, bytes);
    min = Math.floor(a / step) * step;
    max = Math.ceil(b / step) * step;
  }
  if (unit === "percent" && b <= 100 && max > 100 && a >= 0) max = Math.ceil(100 / step) * step;
  const out: number[] = [];
  for (let v = min, i = 0; v <= max + step * 1e-9 && i < 1000; v = min + ++i * step) {
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return { min, max, step, ticks: out };
}

/** Tick labels of one axis: all in the unit of the step, with the same decimals. */
export function tickLabels(ticks: number[], step: number, unit: Unit): string[] {
  const bytes = isBytes(unit);
  if (unit === "percent") {
    const d = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
    return ticks.map((t) => `${t.toFixed(d)}%`);
  }
  // The step's unit: every label is a whole multiple of the step in it.
  const { base, k } = prefix(step, bytes);
  const scale = base ** k;
  const stepIn = step / scale;
  const d = Math.max(0, -Math.floor(Math.log10(stepIn) + 1e-9));
  return ticks.map((t) => `${(t / scale).toFixed(Math.min(d, 6))}${suffix(unit, k, bytes)}`);
}
