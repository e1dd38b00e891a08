// Silences (one-off, with matchers; pre-filled from an alert) and mute
// windows (recurring maintenance).

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Async, Badge, ErrorBox, Field, Table, needs } from "../components/ui";
import { api, ApiError } from "../lib/api";
import { useAuth } from "../lib/auth";
import { LABEL_RE, NAME_RE } from "../lib/ruleForm";
import { formatIso, parseDuration } from "../lib/time";
import type { Matcher, MuteWindow, Silence } from "../lib/types";
import { useRefresh, useView } from "../lib/view";

const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/** ``name=value``, ``name!=value``, ``name=~re``, ``name!~re``. */
export function parseMatcher(text: string): Matcher | null {
  const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$/.exec(text);
  return m ? { name: m[1], op: m[2] as Matcher["op"], value: m[3] } : null;
}

function MatcherRows({ matchers, onChange }: { matchers: Matcher[]; onChange: (m: Matcher[]) => void }) {
  return (
    <fieldset className="matchers">
      <legend>Matchers (all must match)</legend>
      {matchers.map((m, i) => (
        <div key={i} className="row matcher-row">
          <label>
            <span className="visually-hidden">Label {i + 1}</span>
            <input value={m.name} onChange={(e) => onChange(matchers.map((x, j) => (j === i ? { ...x, name: e.target.value } : x)))} placeholder="label" aria-invalid={!LABEL_RE.test(m.name)} />
          </label>
          <label>
            <span className="visually-hidden">Operator {i + 1}</span>
            <select value={m.op} onChange={(e) => onChange(matchers.map((x, j) => (j === i ? { ...x, op: e.target.value as Matcher["op"] } : x)))}>
              {["=", "!=", "=~", "!~"].map((o) => (
                <option key={o}>{o}</option>
              ))}
            </select>
          </label>
          <label>
            <span className="visually-hidden">Value {i + 1}</span>
            <input value={m.value} onChange={(e) => onChange(matchers.map((x, j) => (j === i ? { ...x, value: e.target.value } : x)))} placeholder="value" />
          </label>
          <button type="button" onClick={() => onChange(matchers.filter((_, j) => j !== i))} aria-label={`Remove matcher ${i + 1}`}>
            ×
          </button>
        </div>
      ))}
      <button type="button" onClick={() => onChange([...matchers, { name: "", op: "=", value: "" }])}>
        Add matcher
      </button>
    </fieldset>
  );
}

function matcherProblem(matchers: Matcher[], required: boolean): string {
  if (required && !matchers.length) return "add at least one matcher";
  for (const m of matchers) {
    if (!LABEL_RE.test(m.name)) return `“${m.name}” is not a valid label name`;
    if (m.op.includes("~")) {
      try {
        new RegExp(m.value);
      } catch {
        return `“${m.value}” is not a valid regular expression`;
      }
    }
  }
  return "";
}

export default function Silences() {
  const auth = useAuth();
  const view = useView();
  const { tz, interval } = useRefresh();
  const client = useQueryClient();
  const admin = auth.can("admin");
  const showAll = view.get("all") === "1";
  const prefilled = view.getAll("matcher").map(parseMatcher).filter((m): m is Matcher => m !== null);
  const [creating, setCreating] = useState(view.get("new") === "1");
  const [matchers, setMatchers] = useState<Matcher[]>(prefilled.length ? prefilled : [{ name: "alertname", op: "=", value: "" }]);
  const [duration, setDuration] = useState("2h");
  const [comment, setComment] = useState(view.get("comment"));
  const [error, setError] = useState("");
  const [created, setCreated] = useState("");
  const silences = useQuery({
    queryKey: ["silences", showAll],
    queryFn: ({ signal }) => api<Silence[]>(`/api/v1/silences${showAll ? "" : "?active=true"}`, { signal }),
    refetchInterval: interval,
  });
  const create = useMutation({
    mutationFn: (body: unknown) => api<Silence>("/api/v1/silences", { method: "POST", body }),
    onSuccess: (s) => {
      setCreating(false);
      setCreated(`Silence created; it ends ${formatIso(s.ends_at, tz)}.`);
      view.set({ new: null, matcher: null, comment: null }, { replace: true });
      client.invalidateQueries({ queryKey: ["silences"] });
    },
    onError: (err) => setError(err instanceof ApiError ? err.detail + (err.errors.length ? `: ${err.errors.map((e) => e.msg).join("; ")}` : "") : String(err)),
  });
  const expire = useMutation({
    mutationFn: (id: string) => api(`/api/v1/silences/${id}`, { method: "DELETE" }),
    onSuccess: () => client.invalidateQueries({ queryKey: ["silences"] }),
  });
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    const problem = matcherProblem(matchers, true);
    const seconds = parseDuration(duration);
    if (problem) return setError(problem);
    if (!seconds) return setError("the duration must be like 30m, 2h or 1d");
    setError("");
    create.mutate({ matchers, ends_at: new Date(Date.now() + seconds * 1000).toISOString(), comment });
  };

  return (
    <section>
      <div className="page-head">
        <h1>Silences</h1>
        <button type="button" className="primary" {...needs(admin)} onClick={() => setCreating(true)}>
          New silence
        </button>
      </div>
      {created && <p role="status" className="notice notice-ok">{created}</p>}
      {creating && (
        <form className="panel" onSubmit={submit} aria-label="New silence" noValidate>
          <h2>New silence</h2>
          <MatcherRows matchers={matchers} onChange={setMatchers} />
          <div className="row">
            <Field label="Duration" hint="e.g. 30m, 2h, 1d">
              {(p) => <input {...p} value={duration} onChange={(e) => setDuration(e.target.value)} />}
            </Field>
            <Field label="Comment">{(p) => <input {...p} value={comment} onChange={(e) => setComment(e.target.value)} maxLength={2000} />}</Field>
          </div>
          {error && (
            <p className="field-error" role="alert">
              {error}
            </p>
          )}
          <div className="actions-bar">
            <button type="submit" className="primary" disabled={create.isPending || !admin}>
              Create silence
            </button>
            <button type="button" onClick={() => setCreating(false)}>
              Cancel
            </button>
          </div>
        </form>
      )}
      <label className="check">
        <input type="checkbox" checked={showAll} onChange={(e) => view.set({ all: e.target.checked ? "1" : null })} /> Show expired silences too
      </label>
      {expire.isError && <ErrorBox error={expire.error} />}
      <Async query={silences} loading="Loading silences" empty={<>No {showAll ? "" : "active "}silences.</>}>
        {(data) => (
        <Table head={["State", "Matchers", "Until", "By", "Comment", "Actions"]}>
              {data.map((s) => (
                <tr key={s.id}>
                  <td>
                    <Badge kind={s.state} />
                  </td>
                  <td>
                    <code>{s.matchers.map((m) => `${m.name}${m.op}"${m.value}"`).join(", ")}</code>
                  </td>
                  <td>{formatIso(s.ends_at, tz)}</td>
                  <td>{s.created_by}</td>
                  <td>{s.comment}</td>
                  <td>
                    {s.state !== "expired" && (
                      <button type="button" {...needs(admin)} onClick={() => expire.mutate(s.id)} aria-label={`Expire silence ${s.id}`}>
                        Expire now
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </Table>
        )}
      </Async>
      <MuteWindows />
    </section>
  );
}

function MuteWindows() {
  const auth = useAuth();
  const client = useQueryClient();
  const admin = auth.can("admin");
  const [form, setForm] = useState<MuteWindow["spec"] | null>(null);
  const [isNew, setIsNew] = useState(true);
  const [error, setError] = useState("");
  const windows = useQuery({
    queryKey: ["mute-windows"],
    queryFn: ({ signal }) => api<MuteWindow[]>("/api/v1/mute-windows", { signal }),
  });
  const save = useMutation({
    mutationFn: (spec: MuteWindow["spec"]) =>
      isNew ? api("/api/v1/mute-windows", { method: "POST", body: spec }) : api(`/api/v1/mute-windows/${spec.name}`, { method: "PUT", body: spec }),
    onSuccess: () => {
      setForm(null);
      client.invalidateQueries({ queryKey: ["mute-windows"] });
    },
    onError: (err) => setError(err instanceof ApiError ? err.detail + (err.errors.length ? `: ${err.errors.map((e) => e.msg).join("; ")}` : "") : String(err)),
  });
  const remove = useMutation({
    mutationFn: (name: string) => api(`/api/v1/mute-windows/${name}`, { method: "DELETE" }),
    onSuccess: () => client.invalidateQueries({ queryKey: ["mute-windows"] }),
  });
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    if (!form) return;
    if (!NAME_RE.test(form.name)) return setError("the name: lower-case letters, digits and dashes");
    if (!form.days.length) return setError("pick at least one day");
    if (form.start === form.end) return setError("start and end must differ");
    const problem = matcherProblem(form.matchers, false);
    if (problem) return setError(problem);
    setError("");
    save.mutate(form);
  };
  return (
    <section aria-labelledby="mw-title">
      <div className="page-head">
        <h2 id="mw-title">Mute windows</h2>
        <button
          type="button"
          {...needs(admin)}
          onClick={() => {
            setIsNew(true);
            setError("");
            setForm({ name: "", enabled: true, matchers: [], days: [0, 1, 2, 3, 4], start: "22:00", end: "02:00", timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC", comment: "" });
          }}
        >
          New mute window
        </button>
      </div>
      {form && (
        <form className="panel" onSubmit={submit} aria-label="Mute window" noValidate>
          <div className="row">
            <Field label="Name">{(p) => <input {...p} value={form.name} disabled={!isNew} onChange={(e) => setForm({ ...form, name: e.target.value })} />}</Field>
            <Field label="Start (local)">{(p) => <input {...p} type="time" value={form.start.slice(0, 5)} onChange={(e) => setForm({ ...form, start: e.target.value })} />}</Field>
            <Field label="End (local)" hint="before the start: the next day">
              {(p) => <input {...p} type="time" value={form.end.slice(0, 5)} onChange={(e) => setForm({ ...form, end: e.target.value })} />}
            </Field>
            <Field label="Time zone">{(p) => <input {...p} value={form.timezone} onChange={(e) => setForm({ ...form, timezone: e.target.value })} />}</Field>
          </div>
          <fieldset className="days">
            <legend>Days it starts on</legend>
            {DAYS.map((d, i) => (
              <label key={d} className="check">
                <input
                  type="checkbox"
                  checked={form.days.includes(i)}
                  onChange={(e) => setForm({ ...form, days: e.target.checked ? [...form.days, i].sort() : form.days.filter((x) => x !== i) })}
                />{" "}
                {d}
              </label>
            ))}
          </fieldset>
          <MatcherRows matchers={form.matchers} onChange={(m) => setForm({ ...form, matchers: m })} />
          <label className="check">
            <input type="checkbox" checked={form.enabled} onChange={(e) => setForm({ ...form, enabled: e.target.checked })} /> Enabled
          </label>
          <Field label="Comment">{(p) => <input {...p} value={form.comment} onChange={(e) => setForm({ ...form, comment: e.target.value })} />}</Field>
          {error && (
            <p className="field-error" role="alert">
              {error}
            </p>
          )}
          <div className="actions-bar">
            <button type="submit" className="primary" disabled={save.isPending}>
              Save mute window
            </button>
            <button type="button" onClick={() => setForm(null)}>
              Cancel
            </button>
          </div>
        </form>
      )}
      {remove.isError && <ErrorBox error={remove.error} />}
      <Async query={windows} empty="No mute windows.">
        {(data) => (
        <Table head={["Name", "When", "Matchers", "Now", "Actions"]}>
              {data.map((w) => (
                <tr key={w.name}>
                  <th scope="row">{w.name}</th>
                  <td>
                    {w.spec.days.map((d) => DAYS[d]).join(", ")} {w.spec.start.slice(0, 5)}–{w.spec.end.slice(0, 5)} ({w.spec.timezone})
                  </td>
                  <td>
                    <code>{w.spec.matchers.map((m) => `${m.name}${m.op}"${m.value}"`).join(", ") || "everything"}</code>
                  </td>
                  <td>{!w.spec.enabled ? <Badge kind="disabled" /> : w.active_now ? <Badge kind="active" /> : <span className="muted">inactive</span>}</td>
                  <td className="actions">
                    <button
                      type="button"
                      {...needs(admin)}
                      onClick={() => {
                        setIsNew(false);
                        setError("");
                        setForm({ ...w.spec });
                      }}
                    >
                      Edit
                    </button>
                    <button type="button" {...needs(admin)} onClick={() => window.confirm(`Delete mute window ${w.name}?`) && remove.mutate(w.name)}>
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
            </Table>
        )}
      </Async>
    </section>
  );
}
