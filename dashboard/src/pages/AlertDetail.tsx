// One alert: what happened and why, the series around it with the expected
// band and the rule's threshold, its transitions; acknowledge and silence.

import { useQuery } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { Chart, type Band, type Marker, type Threshold } from "../components/Chart";
import { Badge, ErrorBox, LabelChips, Loading, needs, Table } from "../components/ui";
import { api } from "../lib/api";
import { useAuth } from "../lib/auth";
import { useEventMarkers, useSeries } from "../lib/data";
import { commonLabels, seriesLabel } from "../lib/series";
import { absolute, formatIso } from "../lib/time";
import type { AlertDetail as AlertDetailT, Expected, RuleSpec, Stored } from "../lib/types";
import { formatValue, unitOf, type Unit } from "../lib/units";
import { useRefresh, useView } from "../lib/view";
import { silenceLink, useAck } from "./Alerts";

export default function AlertDetail() {
  const { id = "" } = useParams();
  const auth = useAuth();
  const view = useView();
  const { tz, interval } = useRefresh();
  const navigate = useNavigate();
  const [comment, setComment] = useState("");
  const alert = useQuery({
    queryKey: ["alert", id],
    queryFn: ({ signal }) => api<AlertDetailT>(`/api/v1/alerts/${encodeURIComponent(id)}`, { signal }),
    refetchInterval: interval,
  });
  const a = alert.data;
  const rule = useQuery({
    queryKey: ["rule", a?.rule_name],
    queryFn: ({ signal }) => api<Stored<RuleSpec>>(`/api/v1/rules/${encodeURIComponent(a!.rule_name)}`, { signal }),
    enabled: Boolean(a),
    retry: false,
  });
  const ack = useAck();

  // The series around the alert: an hour before it started to an hour after it ended (or now).
  const started = a ? Date.parse(a.started_at) / 1000 : 0;
  const ended = a?.resolved_at ? Date.parse(a.resolved_at) / 1000 : Date.now() / 1000;
  const from = view.get("from") || (a ? absolute(started - 3600) : "");
  const to = view.get("to") || (a ? (a.resolved_at ? absolute(Math.min(Date.now() / 1000, ended + 3600)) : "now") : "");
  const data = useSeries(a?.metric ? { metric: a.metric, host: a.host, from, to } : null, a?.resolved_at ? false : interval);
  const events = useEventMarkers(a?.host ?? null, started - 3600, ended + 3600, false);
  const series = useMemo(() => {
    if (!a || !data.data) return [];
    const all = data.data.series;
    const own = all.filter((s) => Object.entries(s.labels).every(([k, v]) => a.labels[k] === v));
    const shown = own.length ? own : all;
    const common = commonLabels(shown.map((s) => s.labels));
    return shown.map((s) => ({ label: seriesLabel(s.host, s.metric, s.labels, common, false, false) || s.metric, points: s.points }));
  }, [a, data.data]);

  if (alert.isPending) return <Loading what="Loading the alert" />;
  if (alert.isError) return <ErrorBox error={alert.error} retry={() => alert.refetch()} />;
  if (!a) return null;
  const unit = unitOf(a.metric ?? "");
  const markers: Marker[] = [
    ...a.transitions.map((t) => ({
      t: Date.parse(t.at) / 1000,
      kind: (t.to === "firing" ? "firing" : t.to === "resolved" || t.to === "normal" ? "resolved" : "pending") as Marker["kind"],
      label: `${t.from} → ${t.to}${t.value !== null ? ` at ${formatValue(t.value, unit)}` : ""}`,
    })),
    ...(events.data ?? []),
  ];
  const bands: Band[] =
    a.expected.low !== null && a.expected.high !== null
      ? [{ from: started, to: ended, low: a.expected.low, high: a.expected.high, label: "expected" }]
      : [];
  const regions = a.fired_at ? [{ from: Date.parse(a.fired_at) / 1000, to: ended, label: "firing" }] : [];
  const params = rule.data?.spec.params;
  const thresholds: Threshold[] = [];
  if (params?.kind === "threshold" && typeof params.value === "number") {
    thresholds.push({ value: params.value, label: `threshold ${String(params.comparator ?? ">")} ${params.value}` });
    if (typeof params.recovery_value === "number") thresholds.push({ value: params.recovery_value, label: "recovery" });
  }
  const admin = auth.can("admin");

  return (
    <section>
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/alerts">Alerts</Link> › <span aria-current="page">#{a.id}</span>
      </nav>
      <div className="page-head">
        <h1>
          {a.rule_name} on {a.host}
        </h1>
        <Badge kind={a.state} />
        <Badge kind={a.severity} />
        {a.acked_at && <span className="acked">✓ acknowledged by {a.acked_by} {a.ack_comment ? `— “${a.ack_comment}”` : ""}</span>}
      </div>
      {a.explanation && <p className="explanation">{a.explanation}</p>}
      {a.kind === "forecast" && a.metric && a.expected?.centre !== null && a.expected?.centre !== undefined && (
        <p>
          <Link to={`/capacity?${forecastLink(a, rule.data?.spec.labels ?? {})}`}>See the forecast</Link>
        </p>
      )}
      <dl className="facts">
        <dt>Metric</dt>
        <dd>
          {a.metric ? (
            <Link to={`/explore?${new URLSearchParams({ metric: a.metric, host: a.host, from, to })}`}>{a.metric}</Link>
          ) : (
            "host absence"
          )}
        </dd>
        <dt>Value</dt>
        <dd>{formatValue(a.value, unit)}</dd>
        <dt>Expected</dt>
        <dd>
          {expectedText(a.expected, unit) ?? (thresholds.length ? thresholds[0].label : "–")}
        </dd>
        {a.score !== null && (
          <>
            <dt>Score</dt>
            <dd>{a.score.toFixed(3)}</dd>
          </>
        )}
        <dt>Started</dt>
        <dd>{formatIso(a.started_at, tz)}</dd>
        <dt>Fired</dt>
        <dd>{formatIso(a.fired_at, tz)}</dd>
        <dt>Resolved</dt>
        <dd>{formatIso(a.resolved_at, tz)}</dd>
        <dt>Channels</dt>
        <dd>{a.channels.join(", ") || "–"}</dd>
        {a.contributors.length > 0 && (
          <>
            <dt>Contributors</dt>
            <dd>{a.contributors.join("; ")}</dd>
          </>
        )}
      </dl>
      <LabelChips labels={a.labels} />
      {Object.keys(a.annotations).length > 0 && (
        <dl className="facts">
          {Object.entries(a.annotations).map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd>{v}</dd>
            </div>
          ))}
        </dl>
      )}
      <div className="actions-bar">
        {a.state !== "resolved" && !a.acked_at && (
          <form
            className="inline-form"
            onSubmit={(e) => {
              e.preventDefault();
              ack.mutate({ id: a.id, comment });
            }}
          >
            <label>
              <span>Comment</span>
              <input value={comment} onChange={(e) => setComment(e.target.value)} maxLength={1000} placeholder="optional" />
            </label>
            <button type="submit" {...needs(admin)} disabled={!admin || ack.isPending}>
              Acknowledge
            </button>
          </form>
        )}
        <button type="button" onClick={() => navigate(silenceLink(a))} {...needs(admin)}>
          Silence…
        </button>
      </div>
      {ack.isError && <ErrorBox error={ack.error} />}
      {a.metric && (
        <div className="panel">
          <h2>The series around the alert</h2>
          {data.isError ? (
            <ErrorBox error={data.error} />
          ) : data.isPending ? (
            <Loading />
          ) : series.length === 0 ? (
            <p className="empty">No samples of this series are stored for this range any more.</p>
          ) : (
            <Chart
              title={`${a.metric} on ${a.host} around alert ${a.id}`}
              series={series}
              unit={unit}
              start={data.data!.start}
              end={data.data!.end}
              tz={tz}
              height={300}
              markers={markers}
              bands={bands}
              thresholds={thresholds}
              regions={regions}
              onZoom={(x, y) => view.set({ from: absolute(x), to: absolute(y) })}
            />
          )}
        </div>
      )}
      <h2>Transitions</h2>
      <Table head={["At", "From", "To", "Value", "Expected", "Explanation"]}>
            {a.transitions.map((t) => (
              <tr key={t.seq}>
                <td>{formatIso(t.at, tz)}</td>
                <td>{t.from}</td>
                <td>
                  <Badge kind={t.to} />
                </td>
                <td className="num">{formatValue(t.value, unit)}</td>
                <td>{expectedText(t.expected, unit) ?? "–"}</td>
                <td>{t.explanation}</td>
              </tr>
            ))}
          </Table>
    </section>
  );
}

/** "10% – 60% (centre 35%)", "at most 90%", "at least 5%", or null when nothing is expected. */
export function expectedText(e: Expected, unit: Unit): string | null {
  const { low, high, centre } = e;
  if (low !== null && high !== null) {
    const mid = centre !== null ? ` (centre ${formatValue(centre, unit)})` : "";
    return `${formatValue(low, unit)} – ${formatValue(high, unit)}${mid}`;
  }
  if (high !== null) return `at most ${formatValue(high, unit)}`;
  if (low !== null) return `at least ${formatValue(low, unit)}`;
  return null;
}

/** The Capacity view of a forecast alert's series: its labels are the alert's
 * less those the rule adds. */
export function forecastLink(a: AlertDetailT, ruleLabels: Record<string, string>): URLSearchParams {
  const params = new URLSearchParams({
    metric: a.metric ?? "",
    threshold: String(a.expected.centre),
    direction: a.expected.low !== null ? "below" : "above",
    host: a.host,
  });
  for (const [k, v] of Object.entries(a.labels)) if (!(k in ruleLabels)) params.append("label", `${k}=${v}`);
  return params;
}
