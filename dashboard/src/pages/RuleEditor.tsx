// Create or edit a rule of any kind; preview it over real history
// (POST /api/v1/rules/backtest) before saving.

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useMemo, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { Chart, type Marker, type Region, type Threshold } from "../components/Chart";
import { Combobox } from "../components/Combobox";
import { Badge, ErrorBox, Field, Loading, Notice, Table } from "../components/ui";
import { api, ApiError } from "../lib/api";
import { useAuth } from "../lib/auth";
import { useSeries } from "../lib/data";
import { emptyForm, fromSpec, KINDS, managedBy, seededForm, serverErrors, SEVERITIES, toSpec, type RuleForm } from "../lib/ruleForm";
import { commonLabels, seriesLabel } from "../lib/series";
import { absolute, formatIso } from "../lib/time";
import type { BacktestResult, ChannelSpec, RuleSpec, Stored } from "../lib/types";
import { formatValue, unitOf } from "../lib/units";
import { useView } from "../lib/view";
import { searchMetrics } from "./Explore";

const BACKTEST_RANGES = [
  { label: "6 hours", seconds: 6 * 3600 },
  { label: "24 hours", seconds: 86400 },
  { label: "7 days", seconds: 7 * 86400 },
  { label: "30 days", seconds: 30 * 86400 },
];

export default function RuleEditor() {
  const { name } = useParams();
  const creating = name === undefined;
  const auth = useAuth();
  const view = useView();
  const navigate = useNavigate();
  const client = useQueryClient();
  const [form, setForm] = useState<RuleForm>(() => (creating ? seededForm(view.params) : emptyForm()));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [touched, setTouched] = useState(false);
  const stored = useQuery({
    queryKey: ["rule", name],
    queryFn: ({ signal }) => api<Stored<RuleSpec>>(`/api/v1/rules/${encodeURIComponent(name!)}`, { signal }),
    enabled: !creating,
  });
  const channels = useQuery({
    queryKey: ["channels"],
    queryFn: ({ signal }) => api<Stored<ChannelSpec>[]>("/api/v1/channels", { signal }),
  });
  useEffect(() => {
    if (stored.data) setForm(fromSpec(stored.data.spec));
  }, [stored.data]);
  const managed = stored.data ? managedBy(stored.data) : null;
  const editable = (auth.can("rules") || auth.can("admin")) && !managed;
  const set = <K extends keyof RuleForm>(key: K, value: RuleForm[K]) =>
    setForm((f) => {
      const next = { ...f, [key]: value };
      // a forecast crosses one way: "both" (a baseline's default) becomes "above"
      if (key === "kind" && value === "forecast" && next.direction === "both") next.direction = "above";
      return next;
    });
  const { spec, errors: local } = useMemo(() => toSpec(form), [form]);
  const shown = touched ? { ...local, ...errors } : errors;

  const save = useMutation({
    mutationFn: () =>
      creating
        ? api<Stored<RuleSpec>>("/api/v1/rules", { method: "POST", body: spec })
        : api<Stored<RuleSpec>>(`/api/v1/rules/${encodeURIComponent(name!)}`, { method: "PUT", body: spec }),
    onSuccess: (saved) => {
      client.invalidateQueries({ queryKey: ["rules"] });
      client.invalidateQueries({ queryKey: ["rule", saved.name] });
      navigate(`/rules?saved=${encodeURIComponent(saved.name)}`);
    },
    onError: (err) => {
      if (err instanceof ApiError && err.errors.length) setErrors(serverErrors(err.errors));
      else if (err instanceof ApiError && err.status === 409) setErrors({ name: "a rule with this name exists" });
    },
  });

  const backtestRange = Number(view.get("bt", "86400")) || 86400;
  const backtest = useMutation({
    mutationFn: () => {
      const end = Date.now() / 1000;
      return api<BacktestResult>("/api/v1/rules/backtest", {
        method: "POST",
        body: { rule: { ...spec, name: spec.name || "preview" }, start: absolute(end - backtestRange), end: absolute(end) },
      });
    },
  });

  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    setTouched(true);
    setErrors({});
    if (Object.keys(local).length) return;
    save.mutate();
  };
  const preview = () => {
    setTouched(true);
    const { name: _n, ...rest } = local;
    if (Object.keys(rest).length) return;
    backtest.mutate();
  };

  if (!creating && stored.isPending) return <Loading what="Loading the rule" />;
  if (!creating && stored.isError) return <ErrorBox error={stored.error} retry={() => stored.refetch()} />;

  const text = (key: keyof RuleForm, label: string, hint?: string, type = "text") => (
    <Field label={label} error={shown[key]} hint={hint}>
      {(p) => <input {...p} type={type} value={String(form[key])} onChange={(e) => set(key, e.target.value as never)} disabled={!editable} step={type === "number" ? "any" : undefined} />}
    </Field>
  );
  const select = (key: keyof RuleForm, label: string, options: readonly string[]) => (
    <Field label={label} error={shown[key]}>
      {(p) => (
        <select {...p} value={String(form[key])} onChange={(e) => set(key, e.target.value as never)} disabled={!editable}>
          {options.map((o) => (
            <option key={o}>{o}</option>
          ))}
        </select>
      )}
    </Field>
  );
  const area = (key: keyof RuleForm, label: string, hint: string) => (
    <Field label={label} error={shown[key]} hint={hint}>
      {(p) => <textarea {...p} rows={2} value={String(form[key])} onChange={(e) => set(key, e.target.value as never)} disabled={!editable} />}
    </Field>
  );

  return (
    <section>
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/rules">Rules</Link> › <span aria-current="page">{creating ? "New rule" : name}</span>
      </nav>
      <h1>{creating ? "New rule" : `Rule ${name}`}</h1>
      {managed && (
        <Notice kind="warn">
          This rule is managed by <strong>{managed}</strong> and is read-only here: change the resource in its
          repository, and the operator applies it.
        </Notice>
      )}
      {!auth.can("rules") && !auth.can("admin") && <Notice>Changing rules needs a key with the rules or admin scope; this view is read-only.</Notice>}
      <form className="rule-form" onSubmit={submit} noValidate aria-label="Rule">
        <fieldset>
          <legend>Rule</legend>
          <Field label="Name" error={shown.name} hint="lower-case letters, digits and dashes">
            {(p) => <input {...p} value={form.name} onChange={(e) => set("name", e.target.value)} disabled={!editable || !creating} required />}
          </Field>
          {text("description", "Description")}
          {select("kind", "Kind", KINDS)}
          <div className={`field${shown.metric ? " field-invalid" : ""}`}>
            {editable ? (
              <Combobox
                label={form.kind === "absence" ? "Metric (empty: the host stops reporting)" : form.kind === "burn_rate" ? "Metric (none: the SLO names them)" : "Metric"}
                queryKey="rule-metric"
                value={form.metric}
                onChange={(v) => set("metric", v)}
                onPick={(v) => set("metric", v)}
                suggest={(t, signal) => searchMetrics(t, signal)}
                placeholder="cpu.usage_percent"
              />
            ) : (
              <>
                <label htmlFor="metric-ro">Metric</label>
                <input id="metric-ro" value={form.metric} disabled />
              </>
            )}
            {shown.metric && (
              <small className="field-error" role="alert">
                {shown.metric}
              </small>
            )}
          </div>
          <label className="check">
            <input type="checkbox" checked={form.enabled} onChange={(e) => set("enabled", e.target.checked)} disabled={!editable} /> Enabled
          </label>
        </fieldset>
        <fieldset>
          <legend>Condition ({form.kind})</legend>
          {form.kind === "threshold" && (
            <div className="row">
              {select("comparator", "Comparator", [">", ">=", "<", "<=", "==", "!="])}
              {text("value", "Value", undefined, "number")}
              {text("recovery", "Recovery value", "optional hysteresis: resolves only once crossed back", "number")}
            </div>
          )}
          {form.kind === "baseline" && (
            <div className="row">
              {text("band", "Band (robust deviations)", undefined, "number")}
              {select("direction", "Direction", ["both", "above", "below"])}
              {select("seasonality", "Seasonality", ["auto", "none", "daily", "weekly"])}
              {text("minHistory", "Minimum history (s)", undefined, "number")}
              {text("window", "History window (s)", undefined, "number")}
            </div>
          )}
          {form.kind === "anomaly" && (
            <div className="row">
              {text("scoreThreshold", "Score threshold (0–1)", undefined, "number")}
              {text("minFraction", "Fraction of recent points", undefined, "number")}
              {text("recentPoints", "Recent points", undefined, "number")}
              {text("trainingWindow", "Training window (s)", undefined, "number")}
              {text("retrainEvery", "Retrain every (s)", undefined, "number")}
            </div>
          )}
          {form.kind === "absence" && <div className="row">{text("after", "Silent for (s)", undefined, "number")}</div>}
          {form.kind === "forecast" && (
            <>
              <div className="row">
                {text("value", "Value", "the level the series must not reach, e.g. 90", "number")}
                {select("direction", "Direction", ["above", "below"])}
                {text("horizon", "Horizon", "fire when expected within, e.g. 7d")}
                {text("recoveryHorizon", "Recovery horizon", "resolve once further than this (default 1.5 × horizon)")}
                {text("lookback", "History", "trend fitted on, 12h to 90d")}
                {text("every", "Evaluate every", "e.g. 15m")}
              </div>
              <p className="hint">
                A Theil–Sen trend on the hourly averages, daily cycle removed.{" "}
                {form.metric && form.value && (
                  <Link to={`/capacity?${new URLSearchParams({ metric: form.metric, threshold: form.value, direction: form.direction === "below" ? "below" : "above", horizon: form.horizon })}`}>
                    See what it forecasts now
                  </Link>
                )}
              </p>
            </>
          )}
          {form.kind === "burn_rate" && (
            <div className="row">
              {text("slo", "SLO", "its name on the SLOs page")}
              {text("burnWindows", "Window pairs", "long/short@factor: fires while both windows burn the budget that fast")}
            </div>
          )}
          <div className="row">
            {text("forSeconds", "Pending for (s)", "how long the condition must hold before firing", "number")}
            {text("keepFiringFor", "Keep firing for (s)", undefined, "number")}
            {select("severity", "Severity", SEVERITIES)}
          </div>
        </fieldset>
        <fieldset>
          <legend>Scope</legend>
          {area("seriesLabels", "Series labels", "name=value, one per line: series must have all")}
          {area("hostLabels", "Host labels", "name=value, one per line: hosts must have all")}
          {text("hosts", "Hosts", "names, comma-separated; empty: every host")}
        </fieldset>
        <fieldset>
          <legend>Notification</legend>
          <div className="field" role="group" aria-label="Channels">
            <span className="label">Channels</span>
            {(channels.data ?? []).length === 0 && <small className="hint">No channels yet.</small>}
            {(channels.data ?? []).map((c) => (
              <label key={c.name} className="check">
                <input
                  type="checkbox"
                  checked={form.channels.includes(c.name)}
                  disabled={!editable}
                  onChange={(e) => set("channels", e.target.checked ? [...form.channels, c.name] : form.channels.filter((x) => x !== c.name))}
                />{" "}
                {c.name} <span className="muted">({c.spec.config.type})</span>
              </label>
            ))}
          </div>
          {area("labels", "Alert labels", "name=value, one per line")}
          {area("annotations", "Annotations", "name=template, e.g. summary={{ host }} at {{ value | round(1) }}")}
        </fieldset>
        {shown.form && <p className="field-error" role="alert">{shown.form}</p>}
        <div className="actions-bar">
          <label>
            <span>Backtest over the last</span>
            <select value={backtestRange} onChange={(e) => view.set({ bt: e.target.value }, { replace: true })}>
              {BACKTEST_RANGES.map((r) => (
                <option key={r.seconds} value={r.seconds}>
                  {r.label}
                </option>
              ))}
            </select>
          </label>
          {form.kind !== "forecast" && (
            <button type="button" onClick={preview} disabled={backtest.isPending}>
              {backtest.isPending ? "Running…" : "Preview (backtest)"}
            </button>
          )}
          {editable && (
            <button type="submit" className="primary" disabled={save.isPending}>
              {save.isPending ? "Saving…" : creating ? "Create rule" : "Save rule"}
            </button>
          )}
        </div>
        {save.isError && !(save.error instanceof ApiError && save.error.errors.length) && <ErrorBox error={save.error} />}
        {touched && Object.keys(local).length > 0 && (
          <p className="field-error" role="alert">
            Fix the marked fields: {Object.keys(local).length} problem{Object.keys(local).length > 1 ? "s" : ""}.
          </p>
        )}
      </form>
      {backtest.isError && <ErrorBox error={backtest.error} />}
      {backtest.data && <BacktestView result={backtest.data} spec={spec} />}
    </section>
  );
}

function BacktestView({ result, spec }: { result: BacktestResult; spec: RuleSpec }) {
  const view = useView();
  const tz = view.get("tz", "local");
  const fired = result.counts.firing ?? 0;
  const firingHosts = [...new Set(result.transitions.filter((t) => t.to === "firing").map((t) => t.host))];
  const hosts = firingHosts.length ? firingHosts.slice(0, 20) : spec.selector?.hosts?.length ? spec.selector.hosts : undefined;
  const data = useSeries(
    spec.metric ? { metric: spec.metric, host: hosts, labels: Object.entries(spec.match_series_labels ?? {}).map(([k, v]) => `${k}=${v}`), from: result.start, to: result.end } : null,
    false,
  );
  const unit = unitOf(spec.metric ?? "");
  const series = useMemo(() => {
    const all = (data.data?.series ?? []).slice(0, 20);
    const common = commonLabels(all.map((s) => s.labels));
    return all.map((s) => ({ label: seriesLabel(s.host, s.metric, s.labels, common, false, true), points: s.points }));
  }, [data.data]);
  const markers: Marker[] = result.transitions
    .filter((t) => t.to === "firing" || t.to === "resolved")
    .map((t) => ({ t: Date.parse(t.at) / 1000, kind: t.to === "firing" ? "firing" : "resolved", label: `${t.host}: ${t.from} → ${t.to}` }));
  const regions = useMemo(() => firingRegions(result), [result]);
  const p = spec.params as Record<string, unknown>;
  const thresholds: Threshold[] = spec.params.kind === "threshold" && typeof p.value === "number" ? [{ value: p.value, label: "threshold" }] : [];
  return (
    <section className="panel backtest" aria-labelledby="backtest-title">
      <h2 id="backtest-title">Backtest</h2>
      <p role="status">
        Over {formatIso(result.start, tz)} – {formatIso(result.end, tz)} ({result.series} series, {result.points.toLocaleString("en")} points,{" "}
        {result.resolution} data): <strong>would have fired {fired} time{fired === 1 ? "" : "s"}</strong>
        {result.counts.resolved ? `, resolved ${result.counts.resolved}` : ""}.{result.truncated ? " (Only the first series were evaluated.)" : ""}
      </p>
      {spec.metric && series.length > 0 && data.data && (
        <Chart title={`Backtest of ${spec.name || "the rule"}`} series={series} unit={unit} start={data.data.start} end={data.data.end} tz={tz} markers={markers} thresholds={thresholds} regions={regions} height={240} />
      )}
      {result.transitions.length > 0 && (
        <Table head={["At", "Host", "Transition", "Value", "Explanation"]}>
              {result.transitions.slice(0, 200).map((t, i) => (
                <tr key={i}>
                  <td>{formatIso(t.at, tz)}</td>
                  <td>{t.host}</td>
                  <td>
                    {t.from} → <Badge kind={t.to} />
                  </td>
                  <td className="num">{formatValue(t.value, unit)}</td>
                  <td>{t.explanation}</td>
                </tr>
              ))}
            </Table>
      )}
    </section>
  );
}

/** Where the rule would have been firing, per series, as shaded regions. */
export function firingRegions(result: BacktestResult): Region[] {
  const open = new Map<string, number>();
  const out: Region[] = [];
  for (const t of result.transitions) {
    const key = `${t.host} ${JSON.stringify(t.labels)}`;
    const at = Date.parse(t.at) / 1000;
    if (t.to === "firing") open.set(key, at);
    else if (open.has(key) && t.from === "firing") {
      out.push({ from: open.get(key)!, to: at, label: `${t.host} firing` });
      open.delete(key);
    }
  }
  const end = Date.parse(result.end) / 1000;
  for (const [key, from] of open) out.push({ from, to: end, label: `${key.split(" ")[0]} firing` });
  return out;
}
