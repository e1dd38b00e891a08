// Time ranges as kept in the URL (``from``/``to``: ``now-6h``, ``now``,
// RFC 3339 or Unix milliseconds) and time formatting in the chosen zone.

export interface Preset {
  label: string;
  from: string;
}

export const PRESETS: Preset[] = [
  { label: "15 minutes", from: "now-15m" },
  { label: "1 hour", from: "now-1h" },
  { label: "6 hours", from: "now-6h" },
  { label: "24 hours", from: "now-24h" },
  { label: "7 days", from: "now-7d" },
  { label: "30 days", from: "now-30d" },
];

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Seconds of a duration like ``90``, ``15m``, ``1h30m``; null when invalid. */
export function parseDuration(text: string): number | null {
  const t = text.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  const re = /(\d+(?:\.\d+)?)([smhdw])/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(t)) !== null) {
    total += Number(m[1]) * UNITS[m[2]];
    pos = re.lastIndex;
  }
  return pos === t.length && pos > 0 ? total : null;
}

/** Unix seconds of a range bound at ``now`` (seconds); null when invalid. */
export function resolveTime(text: string, now: number): number | null {
  const t = text.trim();
  if (t === "now") return now;
  const rel = /^now\s*([+-])\s*(.+)$/.exec(t);
  if (rel) {
    const d = parseDuration(rel[2]);
    return d === null ? null : rel[1] === "-" ? now - d : now + d;
  }
  if (/^\d{12,}$/.test(t)) return Number(t) / 1000; // Unix milliseconds
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? null : ms / 1000;
}

export function isRelative(text: string): boolean {
  return text.trim().startsWith("now");
}

/** The label of a range: a preset's name or "from – to". */
export function describeRange(from: string, to: string, tz: string): string {
  if (to === "now") {
    const preset = PRESETS.find((p) => p.from === from);
    if (preset) return `Last ${preset.label}`;
    if (isRelative(from)) return `Last ${from.replace(/^now-/, "")}`;
  }
  const a = resolveTime(from, Date.now() / 1000);
  const b = resolveTime(to, Date.now() / 1000);
  if (a === null || b === null) return `${from} – ${to}`;
  return `${formatTime(a, tz)} – ${formatTime(b, tz)}`;
}

/** An absolute bound for the URL, e.g. after a zoom: whole seconds, RFC 3339 UTC. */
export function absolute(seconds: number): string {
  return new Date(Math.round(seconds) * 1000).toISOString().replace(".000Z", "Z");
}

/** ``local`` means the browser's zone. */
export function zoneOf(tz: string): string | undefined {
  return tz === "local" || !tz ? undefined : tz;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string, withSeconds: boolean): Intl.DateTimeFormat {
  const key = `${tz}|${withSeconds}`;
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat("en-CA", {
      timeZone: zoneOf(tz),
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: withSeconds ? "2-digit" : undefined,
      hourCycle: "h23",
    });
    formatters.set(key, f);
  }
  return f;
}

/** ``2026-01-02 10:04:05`` in the zone. */
export function formatTime(seconds: number, tz: string, withSeconds = true): string {
  if (!Number.isFinite(seconds)) return "–";
  return formatter(tz, withSeconds).format(new Date(seconds * 1000)).replace(",", "");
}

export function formatIso(iso: string | null | undefined, tz: string): string {
  if (!iso) return "–";
  return formatTime(Date.parse(iso) / 1000, tz);
}

/** "12 s ago", "3 min ago", "2 h ago", "4 d ago". */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "never";
  const s = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** Value for an ``<input type="datetime-local">`` in the zone. */
export function toLocalInput(seconds: number, tz: string): string {
  return formatTime(seconds, tz, false).replace(" ", "T");
}

/** Unix seconds of an ``<input type="datetime-local">`` value read in the zone. */
export function fromLocalInput(value: string, tz: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value);
  if (!m) return null;
  const asUtc = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]) / 1000;
  const zone = zoneOf(tz);
  if (!zone) return new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]).getTime() / 1000;
  // The zone's offset at that moment: format the UTC guess in the zone and compare.
  const shown = formatTime(asUtc, tz, false).replace(" ", "T");
  const back = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(shown);
  if (!back) return null;
  const offset = Date.UTC(+back[1], +back[2] - 1, +back[3], +back[4], +back[5]) / 1000 - asUtc;
  return asUtc - offset;
}

export const ZONES = ["local", "UTC"];
