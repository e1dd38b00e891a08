// Shared queries: range queries, alerts and events as chart markers.

import { useQuery } from "@tanstack/react-query";
import type { Marker } from "../components/Chart";
import { api, ApiError, qs } from "./api";
import { absolute } from "./time";
import type { Alert, AlertList, NazarEvent, QueryResult } from "./types";

export interface SeriesQuery {
  metric: string;
  host?: string | string[];
  labels?: string[];
  from: string;
  to: string;
  step?: string;
  agg?: string;
}

export function queryUrl(q: SeriesQuery): string {
  return `/api/v1/query${qs({
    metric: q.metric,
    host: q.host ?? null,
    labels: q.labels ?? [],
    start: q.from,
    end: q.to,
    step: q.step || null,
    agg: q.agg && q.agg !== "avg" ? q.agg : null,
  })}`;
}

export function useSeries(q: SeriesQuery | null, interval: number | false) {
  return useQuery({
    queryKey: ["query", q],
    queryFn: ({ signal }) => api<QueryResult>(queryUrl(q!), { signal }),
    enabled: q !== null && q.metric !== "",
    refetchInterval: interval,
    placeholderData: (prev) => prev,
  });
}

/** Alerts of a host (or all) active in the range, as markers. */
export function useAlertMarkers(host: string | null, start: number, interval: number | false) {
  const since = absolute(start);
  return useQuery({
    queryKey: ["alert-markers", host, since],
    queryFn: ({ signal }) => api<AlertList>(`/api/v1/alerts${qs({ host, since, limit: 500 })}`, { signal }),
    refetchInterval: interval,
    select: alertItems,
  });
}

export function alertMarkers(alerts: Alert[], metrics?: string[]): Marker[] {
  const out: Marker[] = [];
  for (const a of alerts) {
    if (metrics && a.metric && !metrics.includes(a.metric)) continue;
    const started = Date.parse(a.fired_at ?? a.started_at) / 1000;
    out.push({ t: started, kind: a.fired_at ? "firing" : "pending", label: `${a.rule_name} ${a.fired_at ? "fired" : "pending"} (${a.severity})` });
    if (a.resolved_at) out.push({ t: Date.parse(a.resolved_at) / 1000, kind: "resolved", label: `${a.rule_name} resolved` });
  }
  return out;
}

/**
 * Deploy and other events (GET /api/v1/events) as markers. Servers without
 * the events API answer 404: then there are simply no event markers.
 */
export function useEventMarkers(host: string | null, start: number, end: number, interval: number | false) {
  return useQuery({
    queryKey: ["events", host, Math.floor(start / 60), Math.floor(end / 60)],
    queryFn: async ({ signal }) => {
      try {
        return await api<NazarEvent[]>(`/api/v1/events${qs({ host, start: absolute(start), end: absolute(end) })}`, { signal });
      } catch (err) {
        if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return [];
        throw err;
      }
    },
    refetchInterval: interval,
    staleTime: 60_000,
    select: eventMarkers,
  });
}

// Module-level, so the markers keep their identity between renders (a new
// array would rebuild the charts).
export function eventMarkers(events: NazarEvent[]): Marker[] {
  return (Array.isArray(events) ? events : []).map((e) => ({
    t: Date.parse(e.start) / 1000,
    kind: e.kind === "deploy" ? "deploy" : "event",
    label: eventLabel(e),
  }));
}

/** "deploy: deploy web v1.2.3": the version and service only when the title does not already say them. */
export function eventLabel(e: NazarEvent): string {
  const words = e.title.split(/\s+/);
  const version = e.version && !words.includes(e.version) ? ` ${e.version}` : "";
  const service = e.service && !words.includes(e.service) ? ` (${e.service})` : "";
  return `${e.kind}: ${e.title}${version}${service}`;
}

function alertItems(data: AlertList): Alert[] {
  return data.items;
}
