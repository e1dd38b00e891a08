// Range presets, an absolute from/to form, zoom out; time zone and
// auto-refresh choices. Everything lands in the URL.

import { useState } from "react";
import { PRESETS, absolute, describeRange, fromLocalInput, resolveTime, toLocalInput } from "../lib/time";
import { REFRESH_CHOICES, useTimeRange, useView } from "../lib/view";

export function TimeRangePicker({ defaultFrom }: { defaultFrom?: string }) {
  const range = useTimeRange(defaultFrom);
  const [open, setOpen] = useState(false);
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [error, setError] = useState("");
  const openForm = () => {
    setFrom(toLocalInput(range.start, range.tz));
    setTo(toLocalInput(range.end, range.tz));
    setError("");
    setOpen(!open);
  };
  const apply = (e: React.FormEvent) => {
    e.preventDefault();
    const a = fromLocalInput(from, range.tz);
    const b = fromLocalInput(to, range.tz);
    if (a === null || b === null) return setError("Enter both times.");
    if (a >= b) return setError("The start must be before the end.");
    range.set({ from: absolute(a), to: absolute(b) });
    setOpen(false);
  };
  const zoomOut = () => {
    const span = range.end - range.start;
    const now = Date.now() / 1000;
    const b = Math.min(now, range.end + span / 2);
    const a = b - span * 2;
    range.set(range.live ? { from: `now-${Math.round(span * 2)}s`, to: "now" } : { from: absolute(a), to: absolute(b) });
  };
  const shift = (direction: -1 | 1) => {
    const span = range.end - range.start;
    range.set({ from: absolute(range.start + (direction * span) / 2), to: absolute(range.end + (direction * span) / 2) });
  };
  return (
    <div className="range" role="group" aria-label="Time range">
      <label className="visually-hidden" htmlFor="range-preset">
        Time range
      </label>
      <select
        id="range-preset"
        value={range.to === "now" && PRESETS.some((p) => p.from === range.from) ? range.from : ""}
        onChange={(e) => e.target.value && range.set({ from: e.target.value, to: "now" })}
      >
        <option value="">{describeRange(range.from, range.to, range.tz)}</option>
        {PRESETS.map((p) => (
          <option key={p.from} value={p.from}>
            Last {p.label}
          </option>
        ))}
      </select>
      <button type="button" onClick={() => shift(-1)} aria-label="Earlier" title="Earlier">
        ◀
      </button>
      <button type="button" onClick={() => shift(1)} aria-label="Later" title="Later" disabled={range.live}>
        ▶
      </button>
      <button type="button" onClick={zoomOut} title="Zoom out (twice the range)">
        Zoom out
      </button>
      <button type="button" onClick={openForm} aria-expanded={open} aria-controls="range-form">
        Absolute…
      </button>
      {open && (
        <form id="range-form" className="range-form" onSubmit={apply}>
          <label>
            From <input type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} required />
          </label>
          <label>
            To <input type="datetime-local" value={to} onChange={(e) => setTo(e.target.value)} required />
          </label>
          <button type="submit">Apply</button>
          {error && (
            <span className="field-error" role="alert">
              {error}
            </span>
          )}
        </form>
      )}
    </div>
  );
}

const COMMON_ZONES = ["local", "UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Asia/Tokyo", "Asia/Kolkata", "Australia/Sydney"];

export function ViewOptions() {
  const view = useView();
  const tz = view.get("tz", "local");
  const refresh = view.get("refresh", "30s");
  const zones = COMMON_ZONES.includes(tz) ? COMMON_ZONES : [...COMMON_ZONES, tz];
  return (
    <div className="view-options">
      <label title="Time zone">
        <span className="visually-hidden">Time zone</span>
        <select value={tz} onChange={(e) => view.set({ tz: e.target.value === "local" ? null : e.target.value })}>
          {zones.map((z) => (
            <option key={z} value={z}>
              {z === "local" ? `Local time (${Intl.DateTimeFormat().resolvedOptions().timeZone})` : z}
            </option>
          ))}
        </select>
      </label>
      <label title="Auto-refresh">
        <span className="visually-hidden">Auto-refresh</span>
        <select value={refresh} onChange={(e) => view.set({ refresh: e.target.value === "30s" ? null : e.target.value })}>
          {REFRESH_CHOICES.map((r) => (
            <option key={r} value={r}>
              {r === "off" ? "Refresh off" : `Refresh ${r}`}
            </option>
          ))}
        </select>
      </label>
    </div>
  );
}

/** Unix seconds of a bound, for links that carry the range. */
export function rangeParams(from: string, to: string): string {
  const p = new URLSearchParams({ from, to });
  return p.toString();
}

export function resolvedOr(text: string, fallback: number): number {
  return resolveTime(text, Date.now() / 1000) ?? fallback;
}
