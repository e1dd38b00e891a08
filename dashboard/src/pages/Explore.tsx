// Explore: any metric, any hosts and label filters on one chart, with the
// aggregation and step, and the query as an API URL and a curl line.

import { useQuery } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { Chart, type ChartSeries } from "../components/Chart";
import { Combobox } from "../components/Combobox";
import { TimeRangePicker } from "../components/TimeRange";
import { Empty, ErrorBox, FilterChips, LabelFilterInput, Loading } from "../components/ui";
import { api, qs } from "../lib/api";
import { alertMarkers, queryUrl, useAlertMarkers, useEventMarkers, useSeries } from "../lib/data";
import { commonLabels, seriesLabel } from "../lib/series";
import { absolute } from "../lib/time";
import type { Overview } from "../lib/types";
import { unitOf } from "../lib/units";
import { useTimeRange, useView } from "../lib/view";

const AGGS = ["avg", "min", "max", "last", "sum", "count", "rate", "increase"];

export async function searchMetrics(text: string, signal: AbortSignal, host?: string): Promise<string[]> {
  const r = await api<{ names: string[] }>(`/api/v1/metrics/search${qs({ q: text, host: host ?? null, limit: 20 })}`, { signal });
  return r.names;
}

export async function searchHosts(text: string, signal: AbortSignal): Promise<string[]> {
  const r = await api<Overview>(`/api/v1/overview${qs({ q: text, limit: 20, spark: "1m" })}`, { signal });
  return r.hosts.map((h) => h.host);
}

export default function Explore() {
  const view = useView();
  const range = useTimeRange();
  const metric = view.get("metric");
  const hosts = view.getAll("host");
  const labels = view.getAll("label");
  const agg = view.get("agg", "avg");
  const step = view.get("step");
  const [metricText, setMetricText] = useState(metric);
  const [hostText, setHostText] = useState("");
  const [copied, setCopied] = useState("");

  const labelChoices = useQuery({
    queryKey: ["labels", metric],
    queryFn: ({ signal }) => api<{ labels: Record<string, string[]> }>(`/api/v1/labels${qs({ metric })}`, { signal }),
    enabled: metric !== "",
    staleTime: 60_000,
  });
  const query = metric ? { metric, host: hosts, labels, from: range.from, to: range.to, step, agg } : null;
  const result = useSeries(query, range.interval);
  const alerts = useAlertMarkers(hosts.length === 1 ? hosts[0] : null, range.start, range.interval);
  const events = useEventMarkers(hosts.length === 1 ? hosts[0] : null, range.start, range.end, range.interval);
  const series: ChartSeries[] = useMemo(() => {
    const all = result.data?.series ?? [];
    const common = commonLabels(all.map((s) => s.labels));
    const manyHosts = new Set(all.map((s) => s.host)).size > 1;
    return all.map((s) => ({ label: seriesLabel(s.host, s.metric, s.labels, common, false, manyHosts) || s.host, points: s.points }));
  }, [result.data]);

  const url = query ? queryUrl(query) : "";
  const full = url ? `${window.location.origin}${url}` : "";
  const curl = url ? `curl -H "Authorization: Bearer $NAZAR_KEY" '${full}'` : "";
  const copy = async (what: string, text: string) => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied(what);
    } catch {
      setCopied("");
    }
  };
  const unit = unitOf(metric);
  const markers = useMemo(
    () => [...alertMarkers(alerts.data ?? [], metric ? [metric] : undefined), ...(events.data ?? [])],
    [alerts.data, events.data, metric],
  );

  return (
    <section>
      <h1>Explore</h1>
      <form className="explore-form" onSubmit={(e) => e.preventDefault()} aria-label="Query">
        <Combobox
          label="Metric"
          queryKey="metric"
          value={metricText}
          placeholder="search metric names…"
          onChange={setMetricText}
          onPick={(m) => view.set({ metric: m, label: null })}
          suggest={(text, signal) => searchMetrics(text, signal, hosts.length === 1 ? hosts[0] : undefined)}
        />
        <div className="multi">
          <Combobox
            label="Hosts"
            queryKey="host"
            value={hostText}
            placeholder="all hosts; add one…"
            onChange={setHostText}
            onPick={(h) => {
              if (h && !hosts.includes(h)) view.set({ host: [...hosts, h] });
              setHostText("");
            }}
            suggest={searchHosts}
          />
          <FilterChips values={hosts} label="Selected hosts" onChange={(h) => view.set({ host: h })} />
        </div>
        <LabelFilterInput
          values={labels}
          onChange={(l) => view.set({ label: l })}
          suggestions={Object.entries(labelChoices.data?.labels ?? {}).flatMap(([k, vs]) => vs.map((v) => `${k}=${v}`))}
        />
        <label>
          <span>Aggregation</span>
          <select value={agg} onChange={(e) => view.set({ agg: e.target.value === "avg" ? null : e.target.value })}>
            {AGGS.map((a) => (
              <option key={a}>{a}</option>
            ))}
          </select>
        </label>
        <label>
          <span>Step</span>
          <input
            defaultValue={step}
            key={step}
            placeholder="auto"
            size={6}
            onBlur={(e) => view.set({ step: e.target.value.trim() || null })}
            onKeyDown={(e) => e.key === "Enter" && view.set({ step: (e.target as HTMLInputElement).value.trim() || null })}
            aria-describedby="step-hint"
          />
          <small id="step-hint" className="hint">
            60s, 5m, 1h; empty for automatic
          </small>
        </label>
      </form>
      <TimeRangePicker />
      {!metric ? (
        <Empty>Pick a metric to chart. Type part of its name: suggestions come from every host.</Empty>
      ) : result.isError ? (
        <ErrorBox error={result.error} retry={() => result.refetch()} />
      ) : result.isPending ? (
        <Loading what="Querying" />
      ) : series.length === 0 ? (
        <Empty>No series of {metric} match in this range.</Empty>
      ) : (
        <div className="panel">
          <p className="muted">
            {series.length} series · {result.data?.step ? `step ${result.data.step}s, ${result.data.agg}` : "raw points"} · source{" "}
            {result.data?.source}
            {result.isFetching && <span className="spinner" role="status" aria-label="Refreshing" />}
          </p>
          <Chart
            title={metric}
            series={series}
            unit={unit}
            start={result.data?.start ?? range.start}
            end={result.data?.end ?? range.end}
            tz={range.tz}
            height={360}
            markers={markers}
            onZoom={(a, b) => range.set({ from: absolute(a), to: absolute(b) })}
          />
        </div>
      )}
      {url && (
        <div className="copy-box">
          <h2>This query</h2>
          <label htmlFor="api-url">API URL</label>
          <div className="copy-row">
            <input id="api-url" readOnly value={full} onFocus={(e) => e.target.select()} />
            <button type="button" onClick={() => copy("url", full)}>
              Copy
            </button>
          </div>
          <label htmlFor="curl-line">curl</label>
          <div className="copy-row">
            <input id="curl-line" readOnly value={curl} onFocus={(e) => e.target.select()} />
            <button type="button" onClick={() => copy("curl", curl)}>
              Copy
            </button>
          </div>
          <p role="status" className="muted">
            {copied ? `Copied the ${copied === "url" ? "URL" : "curl line"}.` : "Set NAZAR_KEY to a read key."}
          </p>
        </div>
      )}
    </section>
  );
}
