// Capacity: when will a metric cross a level? The fleet's series, soonest
// first (GET /api/v1/forecast without a host), and one series' history with
// its projected trend, the threshold and the expected crossing on the chart.

import { useQuery } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { Link } from "react-router";
import { Chart, type ChartSeries } from "../components/Chart";
import { Combobox } from "../components/Combobox";
import { Async, Badge, Empty, ErrorBox, LabelChips, Loading, Table } from "../components/ui";
import { api } from "../lib/api";
import { useSeries } from "../lib/data";
import { chartEnd, etaText, forecastUrl, intervalText, labelFilters, overlay, type ForecastQuery } from "../lib/forecast";
import { formatIso, formatTime } from "../lib/time";
import type { ForecastResult, SeriesForecast } from "../lib/types";
import { formatValue, unitOf } from "../lib/units";
import { useView } from "../lib/view";
import { searchMetrics } from "./Explore";

const HORIZONS = ["7d", "30d", "90d"];
const LOOKBACKS = ["7d", "14d", "30d"];
const STATUS_TEXT: Record<SeriesForecast["status"], string> = {
  crossed: "crossed",
  crossing: "crossing",
  not_crossing: "not crossing",
  insufficient_data: "too little history",
};

function sameSeries(f: SeriesForecast, host: string, labels: string[]): boolean {
  const mine = labelFilters(f.labels).sort();
  return f.host === host && mine.join("\n") === [...labels].sort().join("\n");
}

export default function Capacity() {
  const view = useView();
  const metric = view.get("metric", "disk.used_percent");
  const threshold = view.get("threshold", "90");
  const direction = view.get("direction", "above");
  const horizon = view.get("horizon", "30d");
  const lookback = view.get("lookback", "14d");
  const host = view.get("host");
  const labels = view.getAll("label");
  const only = view.get("within") === "1";
  const tz = view.get("tz", "local");
  const [metricText, setMetricText] = useState(metric);
  const [thresholdText, setThresholdText] = useState(threshold);
  const base: ForecastQuery = { metric, threshold, direction, horizon, lookback };
  const valid = metric !== "" && threshold.trim() !== "" && Number.isFinite(Number(threshold));

  const fleet = useQuery({
    queryKey: ["forecast", base, only],
    queryFn: ({ signal }) => api<ForecastResult>(forecastUrl({ ...base, within: only }), { signal }),
    enabled: valid,
    staleTime: 60_000,
  });

  return (
    <section>
      <h1>Capacity</h1>
      <p className="muted">
        When each series is expected to cross a level, from a robust trend (Theil–Sen) on its hourly averages with the
        daily cycle removed.
      </p>
      <form
        className="explore-form"
        aria-label="Forecast"
        onSubmit={(e) => {
          e.preventDefault();
          view.set({ metric: metricText.trim(), threshold: thresholdText.trim() });
        }}
      >
        <Combobox
          label="Metric"
          queryKey="capacity-metric"
          value={metricText}
          placeholder="disk.used_percent"
          onChange={setMetricText}
          onPick={(m) => {
            setMetricText(m);
            view.set({ metric: m, host: null, label: null });
          }}
          suggest={(text, signal) => searchMetrics(text, signal)}
        />
        <label>
          <span>Threshold</span>
          <input
            type="number"
            step="any"
            value={thresholdText}
            onChange={(e) => setThresholdText(e.target.value)}
            onBlur={() => view.set({ threshold: thresholdText.trim() })}
            size={6}
          />
        </label>
        <label>
          <span>Direction</span>
          <select value={direction} onChange={(e) => view.set({ direction: e.target.value })}>
            <option value="above">rising to it</option>
            <option value="below">falling to it</option>
          </select>
        </label>
        <label>
          <span>Soon means within</span>
          <select value={horizon} onChange={(e) => view.set({ horizon: e.target.value })}>
            {HORIZONS.map((h) => (
              <option key={h}>{h}</option>
            ))}
          </select>
        </label>
        <label>
          <span>History</span>
          <select value={lookback} onChange={(e) => view.set({ lookback: e.target.value })}>
            {LOOKBACKS.map((h) => (
              <option key={h}>{h}</option>
            ))}
          </select>
        </label>
        <label className="check">
          <input type="checkbox" checked={only} onChange={(e) => view.set({ within: e.target.checked ? "1" : null })} /> Only those due
          within {horizon}
        </label>
        <button type="submit">Forecast</button>
      </form>
      {!valid ? (
        <Empty>Pick a metric and a threshold (a number).</Empty>
      ) : (
        <>
          {host && <SeriesView query={base} host={host} labels={labels} tz={tz} fleet={fleet.data} />}
          <Async
            query={fleet}
            loading="Forecasting"
            isEmpty={(d) => d.forecasts.length === 0}
            empty={<Empty>{only ? `No series of ${metric} is expected to cross ${threshold} within ${horizon}.` : `No series of ${metric}.`}</Empty>}
          >
            {(d) => <FleetTable data={d} selected={host} labels={labels} tz={tz} onPick={(f) => view.set({ host: f.host, label: labelFilters(f.labels) })} />}
          </Async>
        </>
      )}
    </section>
  );
}

function FleetTable({
  data,
  selected,
  labels,
  tz,
  onPick,
}: {
  data: ForecastResult;
  selected: string;
  labels: string[];
  tz: string;
  onPick: (f: SeriesForecast) => void;
}) {
  const unit = unitOf(data.metric);
  const due = data.forecasts.filter((f) => f.within_horizon).length;
  return (
    <>
      <h2>Fleet</h2>
      <p role="status" className="muted">
        {due} of {data.forecasts.length} series expected to {data.direction === "below" ? "fall to" : "reach"} {data.threshold} within{" "}
        {Math.round(data.horizon_seconds / 86400)} days{data.truncated ? " (the first 200 series)" : ""}.
      </p>
      <Table head={["Host", "Series", "Status", "Expected", "Interval", "Now", "Trend per day"]} caption="Forecast per series" className="forecast-table">
        {data.forecasts.map((f) => {
          const current = f.host === selected && sameSeries(f, selected, labels);
          return (
            <tr key={`${f.host} ${JSON.stringify(f.labels)}`} className={current ? "selected" : undefined} aria-current={current || undefined}>
              <th scope="row">
                <button type="button" className="link" onClick={() => onPick(f)} aria-label={`Chart ${f.host} ${labelFilters(f.labels).join(" ")}`.trim()}>
                  {f.host}
                </button>{" "}
                <Link to={`/hosts/${encodeURIComponent(f.host)}`} className="muted small">
                  host
                </Link>
              </th>
              <td>
                <LabelChips labels={f.labels} />
              </td>
              <td>
                <Badge kind={f.within_horizon ? "firing" : f.status === "crossing" ? "pending" : "normal"}>{STATUS_TEXT[f.status]}</Badge>
              </td>
              <td title={f.summary}>
                {f.crossing_ts !== null ? (
                  <>
                    {etaText(f)} <span className="muted small">({formatTime(f.crossing_ts, tz, false)})</span>
                  </>
                ) : (
                  <span className="muted">{f.reason ?? "—"}</span>
                )}
              </td>
              <td className="num">{intervalText(f, data.now_ts)}</td>
              <td className="num">{formatValue(f.trend.level, unit)}</td>
              <td className="num">{f.trend.slope_per_day === null ? "—" : `${f.trend.slope_per_day >= 0 ? "+" : ""}${formatValue(f.trend.slope_per_day, unit)}`}</td>
            </tr>
          );
        })}
      </Table>
    </>
  );
}

function SeriesView({
  query,
  host,
  labels,
  tz,
  fleet,
}: {
  query: ForecastQuery;
  host: string;
  labels: string[];
  tz: string;
  fleet: ForecastResult | undefined;
}) {
  const one = useQuery({
    queryKey: ["forecast", query, host, labels],
    queryFn: ({ signal }) => api<ForecastResult>(forecastUrl({ ...query, host, labels }), { signal }),
    staleTime: 60_000,
  });
  const result = one.data ?? fleet;
  const f = result?.forecasts.find((x) => sameSeries(x, host, labels)) ?? one.data?.forecasts[0];
  const now = result?.now_ts ?? Date.now() / 1000;
  const from = now - (result?.lookback_seconds ?? 14 * 86400);
  // once the forecast has answered: its "now" keeps the query (and its key) stable
  const history = useSeries(
    result ? { metric: query.metric, host, labels, from: `${Math.floor(from)}`, to: `${Math.ceil(now)}`, step: "1h" } : null,
    false,
  );
  const threshold = Number(query.threshold);
  const lookback = result?.lookback_seconds ?? 14 * 86400;
  const end = f ? chartEnd(f, now, lookback) : now + 86400;
  const extra = useMemo(() => (f ? overlay(f, threshold, (t) => formatTime(t, tz, false), end) : null), [f, threshold, tz, end]);
  const series: ChartSeries[] = useMemo(() => {
    const hist = (history.data?.series ?? []).find((s) => s.host === host);
    const out: ChartSeries[] = [];
    if (hist) out.push({ label: `${host} (hourly)`, points: hist.points });
    if (extra && extra.projection.length) out.push({ label: "projected trend", points: extra.projection, color: "#ea580c", dash: [6, 4] });
    return out;
  }, [history.data, host, extra]);
  if (one.isError) return <ErrorBox error={one.error} retry={() => one.refetch()} />;
  if (!f) return one.isPending ? <Loading what="Forecasting" /> : <Empty>No series of {query.metric} on {host} with these labels.</Empty>;
  return (
    <article className="panel" aria-labelledby="forecast-title">
      <header>
        <h2 id="forecast-title">
          {query.metric} on {host}
        </h2>
        <LabelChips labels={f.labels} />
      </header>
      <p className="forecast-summary" role="status">
        {f.summary}
        {f.crossing_ts !== null && f.status === "crossing" && <> — around {formatTime(f.crossing_ts, tz, false)}</>}
      </p>
      {history.isError ? (
        <ErrorBox error={history.error} />
      ) : series.length === 0 ? (
        history.isPending ? <Loading /> : <Empty>No hourly averages in this range.</Empty>
      ) : (
        <Chart
          title={`Forecast of ${query.metric} on ${host}`}
          series={series}
          unit={unitOf(query.metric)}
          start={from}
          end={end}
          tz={tz}
          height={300}
          markers={extra?.markers}
          regions={extra?.regions}
          thresholds={extra?.thresholds}
        />
      )}
      <p className="muted small">
        Trend {f.trend.slope_per_day === null ? "—" : formatValue(f.trend.slope_per_day, unitOf(query.metric))} per day from{" "}
        {f.history.points} hourly averages
        {f.trend.daily_amplitude !== null ? `; daily cycle ${formatValue(f.trend.daily_amplitude, unitOf(query.metric))} peak to trough` : ""}
        {f.trend.level_shift_at ? `; a level shift (a clean-up?) at ${formatIso(f.trend.level_shift_at, tz)} allowed for` : ""}.{" "}
        <Link to={`/rules/new?${new URLSearchParams({ kind: "forecast", metric: query.metric, value: query.threshold })}`}>Alert on it</Link>
      </p>
    </article>
  );
}
