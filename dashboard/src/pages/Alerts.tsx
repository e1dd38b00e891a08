// Alerts: filters by state, severity, rule, host and label (in the URL);
// acknowledge and silence from each row.

import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate } from "react-router";
import { Async, Badge, ErrorBox, LabelChips, LabelFilterInput, needs, Table } from "../components/ui";
import { api, qs } from "../lib/api";
import { useAuth } from "../lib/auth";
import { ago, formatIso } from "../lib/time";
import type { Alert, AlertList, RuleSpec, Stored } from "../lib/types";
import { formatValue, unitOf } from "../lib/units";
import { useRefresh, useView } from "../lib/view";

const STATES = ["open", "firing", "pending", "nodata", "resolved", "all"];
const SEVERITIES = ["critical", "warning", "info"];

/** Matchers a silence of this alert starts with. */
export function silenceLink(a: Alert): string {
  const p = new URLSearchParams();
  p.append("matcher", `alertname=${a.rule_name}`);
  p.append("matcher", `host=${a.host}`);
  for (const [k, v] of Object.entries(a.labels)) {
    if (!["alertname", "rule", "host", "severity", "metric"].includes(k)) p.append("matcher", `${k}=${v}`);
  }
  p.set("comment", `Silenced from alert ${a.id}`);
  p.set("new", "1");
  return `/silences?${p}`;
}

export function useAck() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ id, comment }: { id: number; comment?: string }) =>
      api<Alert>(`/api/v1/alerts/${id}/ack`, { method: "POST", body: { comment: comment ?? "" } }),
    onSuccess: () => client.invalidateQueries({ predicate: (q) => String(q.queryKey[0]).startsWith("alert") }),
  });
}

export default function Alerts() {
  const view = useView();
  const auth = useAuth();
  const { tz, interval } = useRefresh();
  const navigate = useNavigate();
  const state = view.get("state", "open");
  const severity = view.get("severity");
  const rule = view.get("rule");
  const host = view.get("host");
  const labels = view.getAll("label");
  const before = view.get("before");
  const [hostText, setHostText] = useState(host);
  const rules = useQuery({
    queryKey: ["rules"],
    queryFn: ({ signal }) => api<Stored<RuleSpec>[]>("/api/v1/rules", { signal }),
    staleTime: 60_000,
  });
  const alerts = useQuery({
    queryKey: ["alerts", state, severity, rule, host, labels, before],
    queryFn: ({ signal }) =>
      api<AlertList>(
        `/api/v1/alerts${qs({
          state: state === "all" ? null : state,
          severity: severity || null,
          rule: rule || null,
          host: host || null,
          label: labels,
          before_id: before || null,
          limit: 100,
        })}`,
        { signal },
      ),
    placeholderData: keepPreviousData,
    refetchInterval: interval,
  });
  const ack = useAck();
  const admin = auth.can("admin");

  return (
    <section>
      <div className="page-head">
        <h1>Alerts</h1>
        {alerts.isFetching && <span className="spinner" role="status" aria-label="Refreshing" />}
      </div>
      <div className="toolbar" role="search" aria-label="Filter alerts">
        <label>
          <span>State</span>
          <select value={state} onChange={(e) => view.set({ state: e.target.value === "open" ? null : e.target.value, before: null })}>
            {STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          <span>Severity</span>
          <select value={severity} onChange={(e) => view.set({ severity: e.target.value || null, before: null })}>
            <option value="">any</option>
            {SEVERITIES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          <span>Rule</span>
          <select value={rule} onChange={(e) => view.set({ rule: e.target.value || null, before: null })}>
            <option value="">any</option>
            {(rules.data ?? []).map((r) => (
              <option key={r.name}>{r.name}</option>
            ))}
          </select>
        </label>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            view.set({ host: hostText.trim() || null, before: null });
          }}
        >
          <label>
            <span>Host</span>
            <input value={hostText} onChange={(e) => setHostText(e.target.value)} onBlur={() => view.set({ host: hostText.trim() || null, before: null })} placeholder="any" />
          </label>
        </form>
        <LabelFilterInput label="Label" values={labels} onChange={(l) => view.set({ label: l, before: null })} />
      </div>
      {ack.isError && <ErrorBox error={ack.error} />}
      <Async
        query={alerts}
        loading="Loading alerts"
        isEmpty={(data) => data.items.length === 0}
        empty={state === "open" ? "No open alerts. All quiet." : "No alerts match these filters."}
      >
        {(data) => (
          <>
            <Table className="alerts" head={["State", "Severity", "Rule", "Host", "Metric and labels", "Started", "Value", "Actions"]}>
                {data.items.map((a) => (
                  <tr key={a.id} className={`row-${a.state}`}>
                    <td>
                      <Badge kind={a.state} />
                      {a.acked_at && (
                        <span className="acked" title={`acknowledged by ${a.acked_by ?? "?"}`}>
                          {" "}
                          ✓ acked
                        </span>
                      )}
                    </td>
                    <td>
                      <Badge kind={a.severity} />
                    </td>
                    <th scope="row">
                      <Link to={`/alerts/${a.id}`}>{a.rule_name}</Link>
                      <div className="muted small">{a.explanation}</div>
                    </th>
                    <td>
                      <Link to={`/hosts/${encodeURIComponent(a.host)}`}>{a.host}</Link>
                    </td>
                    <td>
                      <code>{a.metric ?? "(host)"}</code>
                      <LabelChips labels={a.labels} onPick={(k, v) => view.set({ label: [...labels.filter((l) => !l.startsWith(`${k}=`)), `${k}=${v}`] })} />
                    </td>
                    <td title={formatIso(a.started_at, tz)}>{ago(a.started_at)}</td>
                    <td className="num">{formatValue(a.value, unitOf(a.metric ?? ""))}</td>
                    <td className="actions">
                      {a.state !== "resolved" && !a.acked_at && (
                        <button type="button" onClick={() => ack.mutate({ id: a.id })} {...needs(admin)} aria-label={`Acknowledge alert ${a.id} (${a.rule_name} on ${a.host})`}>
                          Acknowledge
                        </button>
                      )}
                      <button type="button" onClick={() => navigate(silenceLink(a))} {...needs(admin)} aria-label={`Silence alert ${a.id} (${a.rule_name} on ${a.host})`}>
                        Silence…
                      </button>
                    </td>
                  </tr>
                ))}
            </Table>
          <nav className="pager" aria-label="pages">
            <button type="button" disabled={!before} onClick={() => view.set({ before: null })}>
              Newest
            </button>
            <button type="button" disabled={!data.next_before_id} onClick={() => view.set({ before: String(data.next_before_id) })}>
              Older ›
            </button>
          </nav>
          </>
        )}
      </Async>
    </section>
  );
}
