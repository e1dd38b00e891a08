// One host: CPU, memory, disk and network panels over one time range, with
// alert and deploy markers; each panel opens in Explore.

import { useQuery } from "@tanstack/react-query";
import { useMemo } from "react";
import { Link, useParams } from "react-router";
import { Chart, type ChartSeries, type Marker } from "../components/Chart";
import { TimeRangePicker } from "../components/TimeRange";
import { Badge, Empty, ErrorBox, LabelChips, Loading } from "../components/ui";
import { api } from "../lib/api";
import { alertMarkers, useAlertMarkers, useEventMarkers, useSeries } from "../lib/data";
import { commonLabels, seriesLabel } from "../lib/series";
import { absolute, ago } from "../lib/time";
import type { Labels, QueryResult } from "../lib/types";
import type { Unit } from "../lib/units";
import { useTimeRange } from "../lib/view";

interface Panel {
  title: string;
  metrics: string[];
  unit: Unit;
  /** Keep only these series (e.g. the CPU total rather than every core). */
  keep?: (labels: Labels) => boolean;
  /** A level worth forecasting (the panel links to Capacity). */
  forecast?: number;
}

const PANELS: Panel[] = [
  { title: "CPU", metrics: ["cpu.usage_percent"], unit: "percent", keep: (l) => !("cpu" in l) || l.cpu === "total" },
  { title: "Memory", metrics: ["mem.used_percent"], unit: "percent" },
  { title: "Disk space", metrics: ["disk.used_percent"], unit: "percent", forecast: 90 },
  { title: "Network", metrics: ["net.rx_bytes_per_sec", "net.tx_bytes_per_sec"], unit: "bytes/s" },
  { title: "Disk I/O", metrics: ["disk.read_bytes_per_sec", "disk.write_bytes_per_sec"], unit: "bytes/s" },
];

interface HostInfo {
  host: string;
  labels: Labels;
  status: string;
  last_sample: string;
  series_count: number;
  samples_per_second: number;
  series: { metric: string }[];
}

export default function Host() {
  const { host = "" } = useParams();
  const range = useTimeRange();
  const info = useQuery({
    queryKey: ["host", host],
    queryFn: ({ signal }) => api<HostInfo>(`/api/v1/hosts/${encodeURIComponent(host)}`, { signal }),
    refetchInterval: range.interval,
  });
  const alerts = useAlertMarkers(host, range.start, range.interval);
  const events = useEventMarkers(host, range.start, range.end, range.interval);
  const metrics = useMemo(() => [...new Set((info.data?.series ?? []).map((s) => s.metric))].sort(), [info.data]);
  const zoom = (a: number, b: number) => range.set({ from: absolute(a), to: absolute(b) });
  const markers = useMemo(
    () => PANELS.map((p) => [...alertMarkers(alerts.data ?? [], p.metrics), ...(events.data ?? [])]),
    [alerts.data, events.data],
  );

  return (
    <section>
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/">Fleet</Link> › <span aria-current="page">{host}</span>
      </nav>
      <div className="page-head">
        <h1>{host}</h1>
        {info.data && <Badge kind={info.data.status} />}
        {info.data && <span className="muted">last sample {ago(info.data.last_sample)}</span>}
      </div>
      {info.isError && <ErrorBox error={info.error} retry={() => info.refetch()} />}
      {info.data && <LabelChips labels={info.data.labels} />}
      <TimeRangePicker />
      {alerts.isError && <ErrorBox error={alerts.error} />}
      <div className="panels">
        {PANELS.map((p, i) => (
          <HostPanel
            key={p.title}
            panel={p}
            host={host}
            available={metrics}
            markers={markers[i]}
            onZoom={zoom}
          />
        ))}
      </div>
      {metrics.length > 0 && (
        <details className="all-metrics">
          <summary>All {metrics.length} metrics of this host</summary>
          <ul className="columns">
            {metrics.map((m) => (
              <li key={m}>
                <Link to={`/explore?${new URLSearchParams({ metric: m, host, from: range.from, to: range.to })}`}>{m}</Link>
              </li>
            ))}
          </ul>
        </details>
      )}
    </section>
  );
}

function HostPanel({
  panel,
  host,
  available,
  markers,
  onZoom,
}: {
  panel: Panel;
  host: string;
  available: string[];
  markers: Marker[];
  onZoom: (a: number, b: number) => void;
}) {
  const range = useTimeRange();
  const first = useSeries({ metric: panel.metrics[0], host, from: range.from, to: range.to }, range.interval);
  const second = useSeries(
    panel.metrics[1] ? { metric: panel.metrics[1], host, from: range.from, to: range.to } : null,
    range.interval,
  );
  const results = [first.data, second.data].filter((r): r is QueryResult => Boolean(r));
  const series: ChartSeries[] = useMemo(() => {
    const all = results.flatMap((r) => r.series).filter((s) => !panel.keep || panel.keep(s.labels));
    const common = commonLabels(all.map((s) => s.labels));
    return all.map((s) => ({ label: seriesLabel(s.host, s.metric, s.labels, common, panel.metrics.length > 1, false), points: s.points }));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [first.data, second.data]);
  const explore = new URLSearchParams({ metric: panel.metrics[0], host, from: range.from, to: range.to });
  const result = first.data;
  const missing = !panel.metrics.some((m) => available.includes(m));
  return (
    <article className="panel" aria-labelledby={`panel-${panel.title}`}>
      <header>
        <h2 id={`panel-${panel.title}`}>{panel.title}</h2>
        {(first.isFetching || second.isFetching) && <span className="spinner" role="status" aria-label="Loading" />}
        {panel.forecast !== undefined && (
          <Link
            to={`/capacity?${new URLSearchParams({ metric: panel.metrics[0], threshold: String(panel.forecast), host })}`}
            className="panel-link"
          >
            Forecast <span className="visually-hidden">{panel.title}</span>
          </Link>
        )}
        <Link to={`/explore?${explore}`} className="panel-link">
          Explore <span className="visually-hidden">{panel.title}</span>
        </Link>
      </header>
      {first.isError ? (
        <ErrorBox error={first.error} retry={() => first.refetch()} />
      ) : first.isPending ? (
        <Loading />
      ) : series.length === 0 ? (
        <Empty>{missing ? `This host sends no ${panel.metrics.join(" / ")}.` : "No data in this range."}</Empty>
      ) : (
        <Chart
          title={`${panel.title} of ${host}`}
          series={series}
          unit={panel.unit}
          start={result?.start ?? range.start}
          end={result?.end ?? range.end}
          tz={range.tz}
          markers={markers}
          onZoom={onZoom}
          height={200}
        />
      )}
    </article>
  );
}
