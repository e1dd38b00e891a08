// SLOs & availability: uptime per host group and host with their outages,
// the SLOs with their error budget and burn rates, the SLO form (admin
// keys), and the printable monthly report.

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Async, Badge, ErrorBox, Field, Table, needs } from "../components/ui";
import { api, ApiError, getKey, qs } from "../lib/api";
import { useAuth } from "../lib/auth";
import {
  budgetShare,
  durationText,
  emptySloForm,
  fromSloSpec,
  groupName,
  percent,
  sloFieldOf,
  span,
  toSloSpec,
  type AvailabilityReport,
  type SloForm,
  type StoredSlo,
} from "../lib/slo";
import { formatTime } from "../lib/time";
import { useRefresh, useView } from "../lib/view";

const PERIODS = ["1d", "7d", "30d", "90d"];
const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,99}$/;

function thisMonth(): string {
  const d = new Date();
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
}

/** Fetches the printable report with the key and opens it in a new window. */
export async function openReport(month: string, groupBy: string): Promise<void> {
  const target = window.open("", "_blank");
  const response = await fetch(`/api/v1/reports/monthly.html${qs({ month, group_by: groupBy ? `label:${groupBy}` : null })}`, {
    headers: { Authorization: `Bearer ${getKey()}` },
  });
  const text = await response.text();
  if (!response.ok) {
    let detail = text.slice(0, 200);
    try {
      detail = JSON.parse(text).detail ?? detail;
    } catch {
      /* not problem+json */
    }
    target?.close();
    throw new ApiError(response.status, "Report", detail);
  }
  const url = URL.createObjectURL(new Blob([text], { type: "text/html" }));
  if (target) target.location.href = url;
  else window.location.href = url;
}

function Availability({ period, groupBy, tz, interval }: { period: string; groupBy: string; tz: string; interval: number | false }) {
  const report = useQuery({
    queryKey: ["availability", period, groupBy],
    queryFn: ({ signal }) =>
      api<AvailabilityReport>(`/api/v1/reports/availability${qs({ period, group_by: groupBy ? `label:${groupBy}` : null, outages: 10 })}`, { signal }),
    refetchInterval: interval,
  });
  return (
    <Async query={report} loading="Measuring availability" isEmpty={(r) => r.groups.length === 0} empty="No host has reported in this period.">
      {(r) => (
        <Table head={["Group / host", "Uptime", "Outages", "Downtime", "Longest outage", "MTTR"]} caption="Availability per group and host" className="availability">
          {r.groups.map((g) => {
            const name = groupName(g.group);
            return [
              <tr key={`g:${name}`} className="group-row">
                <th scope="row">{name}</th>
                <td className="num">{percent(g.uptime_percent)}</td>
                <td className="num">{g.outages}</td>
                <td>{span(g.downtime_seconds)}</td>
                <td>{span(g.longest_outage?.seconds)}</td>
                <td>{span(g.mttr_seconds)}</td>
              </tr>,
              ...g.hosts.map((h) => (
                <tr key={`h:${name}:${h.host}`}>
                  <td>
                    <details>
                      <summary>
                        {h.host} {h.down_at_end && <Badge kind="down">down</Badge>}
                      </summary>
                      {h.outage_list && h.outage_list.length ? (
                        <ul className="outages" aria-label={`Outages of ${h.host}`}>
                          {h.outage_list.map((o) => (
                            <li key={o.start}>
                              {formatTime(o.start, tz)} – {o.ongoing ? "ongoing" : formatTime(o.end, tz)} ({span(o.seconds)})
                            </li>
                          ))}
                        </ul>
                      ) : (
                        <p className="muted">No outage.</p>
                      )}
                    </details>
                  </td>
                  <td className="num">{percent(h.uptime_percent)}</td>
                  <td className="num">{h.outages}</td>
                  <td>{span(h.downtime_seconds)}</td>
                  <td>{span(h.longest_outage?.seconds)}</td>
                  <td>{span(h.mttr_seconds)}</td>
                </tr>
              )),
            ];
          })}
        </Table>
      )}
    </Async>
  );
}

function SloEditor({ initial, onDone }: { initial: SloForm; onDone: (saved: string | null) => void }) {
  const client = useQueryClient();
  const [form, setForm] = useState(initial);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState("");
  const editing = initial.name !== "";
  const save = useMutation({
    mutationFn: (spec: unknown) => api(`/api/v1/slos/${encodeURIComponent(form.name)}`, { method: "PUT", body: spec }),
    onSuccess: () => {
      client.invalidateQueries({ queryKey: ["slos"] });
      onDone(form.name);
    },
    onError: (err) => {
      if (err instanceof ApiError && err.errors.length) {
        const out: Record<string, string> = {};
        for (const e of err.errors) out[sloFieldOf(e.loc)] = e.msg;
        setErrors(out);
      }
      setProblem(err instanceof ApiError ? err.detail : String(err));
    },
  });
  const set = (patch: Partial<SloForm>) => setForm({ ...form, ...patch });
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    const { spec, errors: found } = toSloSpec(form);
    setErrors(found);
    setProblem("");
    if (Object.keys(found).length) return;
    save.mutate(spec);
  };
  const text = (name: Exclude<keyof SloForm, "kind" | "counter">, label: string, hint?: string, extra: Record<string, unknown> = {}) => (
    <Field label={label} hint={hint} error={errors[name]}>
      {(p) => <input {...p} {...extra} value={form[name]} onChange={(e) => set({ [name]: e.target.value } as Partial<SloForm>)} />}
    </Field>
  );
  return (
    <form className="panel" onSubmit={submit} aria-label={editing ? `Edit SLO ${initial.name}` : "New SLO"} noValidate>
      <h2>{editing ? `Edit SLO ${initial.name}` : "New SLO"}</h2>
      <div className="row">
        {text("name", "Name", "e.g. api-availability", { readOnly: editing })}
        {text("objective", "Objective (%)", "e.g. 99.9", { inputMode: "decimal" })}
        {text("window", "Window", "e.g. 30d")}
      </div>
      {text("description", "Description")}
      <fieldset>
        <legend>Indicator</legend>
        <label className="check">
          <input type="radio" name="kind" checked={form.kind === "availability"} onChange={() => set({ kind: "availability" })} /> Availability of the hosts
        </label>
        <label className="check">
          <input type="radio" name="kind" checked={form.kind === "ratio"} onChange={() => set({ kind: "ratio" })} /> Good / total events
        </label>
        {form.kind === "availability" ? (
          <div className="row">{text("gap", "Down after silence of", "e.g. 5m")}</div>
        ) : (
          <>
            <div className="row">
              {text("good", "Good events metric", "each sample counts good events")}
              {text("goodLabels", "Good series labels", "k=v, k2=v2")}
            </div>
            <div className="row">
              {text("total", "Total events metric", "each sample counts all events")}
              {text("totalLabels", "Total series labels", "k=v, k2=v2")}
            </div>
            <label className="check">
              <input type="checkbox" checked={form.counter} onChange={(e) => set({ counter: e.target.checked })} /> Cumulative counters (Prometheus <code>*_total</code>): count their increase
            </label>
          </>
        )}
      </fieldset>
      {text("hostLabels", "Host labels", "only hosts with these labels, e.g. role=web")}
      {problem && (
        <p className="field-error" role="alert">
          {problem}
        </p>
      )}
      <div className="actions-bar">
        <button type="submit" className="primary" disabled={save.isPending}>
          Save SLO
        </button>
        <button type="button" onClick={() => onDone(null)}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function BudgetMeter({ slo }: { slo: StoredSlo }) {
  const share = budgetShare(slo.status);
  const left = slo.status?.error_budget_remaining;
  if (share === null || left === null || left === undefined) return <span className="muted">no data</span>;
  return (
    <span className="budget">
      <meter min={0} max={1} low={0.25} high={0.5} optimum={1} value={share} aria-label={`Error budget left for ${slo.name}`} />{" "}
      {(left * 100).toFixed(1)}%
    </span>
  );
}

function burn(x: number | null | undefined): string {
  return x === null || x === undefined ? "—" : `${x.toFixed(2)}x`;
}

export default function Slos() {
  const auth = useAuth();
  const admin = auth.can("admin");
  const view = useView();
  const { tz, interval } = useRefresh();
  const client = useQueryClient();
  const period = PERIODS.includes(view.get("period")) ? view.get("period") : "30d";
  const groupBy = LABEL_NAME.test(view.get("group")) ? view.get("group") : "";
  const [groupText, setGroupText] = useState(groupBy);
  const [editing, setEditing] = useState<SloForm | null>(null);
  const [saved, setSaved] = useState("");
  const [month, setMonth] = useState(thisMonth());
  const [reportError, setReportError] = useState<unknown>(null);
  const slos = useQuery({
    queryKey: ["slos"],
    queryFn: ({ signal }) => api<StoredSlo[]>("/api/v1/slos", { signal }),
    refetchInterval: interval,
  });
  const remove = useMutation({
    mutationFn: (name: string) => api(`/api/v1/slos/${encodeURIComponent(name)}`, { method: "DELETE" }),
    onSuccess: () => client.invalidateQueries({ queryKey: ["slos"] }),
  });
  return (
    <section>
      <div className="page-head">
        <h1>SLOs & availability</h1>
      </div>
      <form
        className="toolbar"
        aria-label="Availability options"
        onSubmit={(e) => {
          e.preventDefault();
          view.set({ group: LABEL_NAME.test(groupText) ? groupText : null });
        }}
      >
        <label>
          Period{" "}
          <select value={period} onChange={(e) => view.set({ period: e.target.value })}>
            {PERIODS.map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </label>
        <label>
          Group by host label <input value={groupText} placeholder="e.g. role" onChange={(e) => setGroupText(e.target.value)} aria-invalid={groupText !== "" && !LABEL_NAME.test(groupText)} />
        </label>
        <button type="submit">Apply</button>
      </form>

      <h2>Availability</h2>
      <p className="hint">A host is down while it sends no sample for more than 5 minutes, from its last sample to its next.</p>
      <Availability period={period} groupBy={groupBy} tz={tz} interval={interval} />

      <div className="page-head">
        <h2>Service level objectives</h2>
        <button type="button" className="primary" {...needs(admin)} onClick={() => setEditing(emptySloForm())}>
          New SLO
        </button>
      </div>
      {saved && (
        <p role="status" className="notice notice-ok">
          SLO {saved} saved.
        </p>
      )}
      {editing && admin && (
        <SloEditor
          key={editing.name || "new"}
          initial={editing}
          onDone={(name) => {
            setEditing(null);
            if (name) setSaved(name);
          }}
        />
      )}
      {remove.isError && <ErrorBox error={remove.error} />}
      <Async query={slos} loading="Measuring SLOs" empty="No SLO yet. An admin key can create one.">
        {(items) => (
          <Table head={["SLO", "Objective", "Achieved", "Error budget left", "Burn 1h / 5m", "Burn 6h / 30m", "Status", ""]} caption="Service level objectives">
            {items.map((s) => {
              const st = s.status;
              const met = st?.attained;
              return (
                <tr key={s.name}>
                  <th scope="row">
                    {s.name}
                    {s.spec.description && <small className="muted"> {s.spec.description}</small>}
                  </th>
                  <td className="num">
                    {s.spec.objective}% / {durationText(s.spec.window)}
                  </td>
                  <td className="num">{percent(st?.sli_percent, 4)}</td>
                  <td>
                    <BudgetMeter slo={s} />
                  </td>
                  <td className="num">
                    {burn(st?.burn_rates["1h"])} / {burn(st?.burn_rates["5m"])}
                  </td>
                  <td className="num">
                    {burn(st?.burn_rates["6h"])} / {burn(st?.burn_rates["30m"])}
                  </td>
                  <td>{met === null || met === undefined ? <Badge kind="info">no data</Badge> : met ? <Badge kind="up">met</Badge> : <Badge kind="firing">missed</Badge>}</td>
                  <td className="actions">
                    <button type="button" {...needs(admin)} onClick={() => setEditing(fromSloSpec(s.spec))} aria-label={`Edit ${s.name}`}>
                      Edit
                    </button>
                    <button
                      type="button"
                      {...needs(admin)}
                      onClick={() => window.confirm(`Delete SLO ${s.name}?`) && remove.mutate(s.name)}
                      aria-label={`Delete ${s.name}`}
                    >
                      Delete
                    </button>
                  </td>
                </tr>
              );
            })}
          </Table>
        )}
      </Async>
      <p className="hint">
        Alert on an SLO with a rule of kind <code>burn_rate</code> (multi-window, multi-burn-rate; see docs/slo.md).
      </p>

      <h2>Monthly report</h2>
      <form
        className="toolbar"
        aria-label="Monthly report"
        onSubmit={(e) => {
          e.preventDefault();
          setReportError(null);
          openReport(month, groupBy).catch(setReportError);
        }}
      >
        <label>
          Month <input type="month" value={month} onChange={(e) => setMonth(e.target.value)} />
        </label>
        <button type="submit">Open printable report</button>
        <small className="hint">
          Per group: availability, SLOs met, alerts by rule and severity, time to acknowledge. As JSON: <code>GET /api/v1/reports/monthly?month={month}</code>
        </small>
      </form>
      {reportError !== null && <ErrorBox error={reportError} />}
    </section>
  );
}
