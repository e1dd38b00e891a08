// View state kept in the URL's query string (shareable, survives reloads):
// the time range (from, to), time zone (tz), auto-refresh (refresh) and
// each page's own filters.

import { useCallback } from "react";
import { useSearchParams } from "react-router";
import { isRelative, parseDuration, resolveTime } from "./time";

export type Patch = Record<string, string | string[] | null | undefined>;

export function useView() {
  const [params, setParams] = useSearchParams();
  const get = useCallback((name: string, fallback = "") => params.get(name) ?? fallback, [params]);
  const getAll = useCallback((name: string) => params.getAll(name), [params]);
  const set = useCallback(
    (patch: Patch, options: { replace?: boolean } = {}) => {
      setParams(
        (prev) => {
          const next = new URLSearchParams(prev);
          for (const [name, value] of Object.entries(patch)) {
            next.delete(name);
            if (Array.isArray(value)) value.forEach((v) => v !== "" && next.append(name, v));
            else if (value !== null && value !== undefined && value !== "") next.set(name, value);
          }
          return next;
        },
        { replace: options.replace },
      );
    },
    [setParams],
  );
  return { params, get, getAll, set };
}

export const DEFAULT_FROM = "now-1h";
export const REFRESH_CHOICES = ["off", "10s", "30s", "1m", "5m"];

export function useTimeRange(defaultFrom = DEFAULT_FROM) {
  const view = useView();
  const from = view.get("from", defaultFrom);
  const to = view.get("to", "now");
  const tz = view.get("tz", "local");
  const refresh = view.get("refresh", "30s");
  const now = Date.now() / 1000;
  const start = resolveTime(from, now) ?? now - 3600;
  const end = resolveTime(to, now) ?? now;
  const live = isRelative(to);
  const seconds = refresh === "off" ? null : parseDuration(refresh);
  return {
    from,
    to,
    tz,
    refresh,
    start,
    end,
    live,
    /** Refetch interval for queries of this view (only for ranges ending now). */
    interval: live && seconds ? seconds * 1000 : (false as const),
    set: view.set,
  };
}

/** The time zone and auto-refresh interval alone (pages without a time range). */
export function useRefresh() {
  const view = useView();
  const refresh = view.get("refresh", "30s");
  const seconds = refresh === "off" ? null : parseDuration(refresh);
  return { tz: view.get("tz", "local"), interval: seconds ? seconds * 1000 : (false as const) };
}
