// Notification channels: list, create, edit, send a test, delete.

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Async, Badge, ErrorBox, Field, Notice, Table, needs } from "../components/ui";
import { api, ApiError, describeError } from "../lib/api";
import { useAuth } from "../lib/auth";
import { NAME_RE, pairsText, parsePairs } from "../lib/ruleForm";
import type { ChannelSpec, Stored } from "../lib/types";

const MASK = "**********";

interface Form {
  name: string;
  enabled: boolean;
  type: "slack" | "email" | "webhook";
  url: string;
  slackChannel: string;
  headers: string;
  to: string;
  from: string;
  smtpHost: string;
  smtpPort: string;
  security: string;
  username: string;
  password: string;
  matchLabels: string;
  minSeverity: string;
  groupBy: string;
  groupWait: string;
  groupInterval: string;
  repeatInterval: string;
}

const EMPTY: Form = {
  name: "",
  enabled: true,
  type: "webhook",
  url: "",
  slackChannel: "",
  headers: "",
  to: "",
  from: "",
  smtpHost: "",
  smtpPort: "587",
  security: "starttls",
  username: "",
  password: "",
  matchLabels: "",
  minSeverity: "info",
  groupBy: "rule, host",
  groupWait: "10",
  groupInterval: "300",
  repeatInterval: "14400",
};

function toForm(c: Stored<ChannelSpec>): Form {
  const cfg = c.spec.config as Record<string, unknown>;
  const s = (v: unknown) => (v === undefined || v === null ? "" : String(v));
  return {
    ...EMPTY,
    name: c.name,
    enabled: c.spec.enabled !== false,
    type: c.spec.config.type,
    url: s(cfg.type === "slack" ? cfg.webhook_url : cfg.url),
    slackChannel: s(cfg.channel),
    headers: pairsText(cfg.headers as Record<string, string> | undefined),
    to: ((cfg.to as string[] | undefined) ?? []).join(", "),
    from: s(cfg.from),
    smtpHost: s(cfg.smtp_host),
    smtpPort: s(cfg.smtp_port ?? 587),
    security: s(cfg.security ?? "starttls"),
    username: s(cfg.username),
    password: s(cfg.password),
    matchLabels: pairsText(c.spec.match?.labels ?? undefined),
    minSeverity: c.spec.match?.min_severity ?? "info",
    groupBy: (c.spec.group_by ?? ["rule", "host"]).join(", "),
    groupWait: s(c.spec.group_wait ?? 10),
    groupInterval: s(c.spec.group_interval ?? 300),
    repeatInterval: s(c.spec.repeat_interval ?? 14400),
  };
}

export function channelSpec(f: Form): { spec: ChannelSpec; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  if (!NAME_RE.test(f.name)) errors.name = "lower-case letters, digits and dashes";
  let config: ChannelSpec["config"];
  if (f.type === "email") {
    const to = f.to.split(/[\s,]+/).filter(Boolean);
    if (!to.length) errors.to = "at least one address";
    if (!f.from.trim()) errors.from = "required";
    if (!f.smtpHost.trim()) errors.smtpHost = "required";
    const port = Number(f.smtpPort);
    if (!Number.isInteger(port) || port < 1 || port > 65535) errors.smtpPort = "1 to 65535";
    config = { type: "email", to, from: f.from.trim(), smtp_host: f.smtpHost.trim(), smtp_port: port, security: f.security };
    if (f.username) config.username = f.username;
    if (f.password) config.password = f.password;
  } else {
    const url = f.url.trim();
    if (url !== MASK && !/^https?:\/\/[^\s/]+/.test(url)) errors.url = "an http:// or https:// URL";
    if (f.type === "slack") {
      config = { type: "slack", webhook_url: url };
      if (f.slackChannel.trim()) config.channel = f.slackChannel.trim();
    } else {
      config = { type: "webhook", url, headers: parsePairs(f.headers, "headers", errors, false) };
    }
  }
  const number = (text: string, field: string) => {
    const n = Number(text);
    if (text.trim() === "" || !Number.isFinite(n) || n < 0) errors[field] = "0 or more seconds";
    return n;
  };
  const labels = parsePairs(f.matchLabels, "matchLabels", errors, false);
  const spec: ChannelSpec = {
    name: f.name,
    enabled: f.enabled,
    config,
    match: Object.keys(labels).length || f.minSeverity !== "info" ? { labels, min_severity: f.minSeverity } : null,
    group_by: f.groupBy.split(/[\s,]+/).filter(Boolean),
    group_wait: number(f.groupWait, "groupWait"),
    group_interval: number(f.groupInterval, "groupInterval"),
    repeat_interval: number(f.repeatInterval, "repeatInterval"),
  };
  return { spec, errors };
}

export default function Channels() {
  const auth = useAuth();
  const client = useQueryClient();
  const admin = auth.can("admin");
  const [editing, setEditing] = useState<Form | null>(null);
  const [isNew, setIsNew] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [tested, setTested] = useState<Record<string, string>>({});
  const channels = useQuery({
    queryKey: ["channels"],
    queryFn: ({ signal }) => api<Stored<ChannelSpec>[]>("/api/v1/channels", { signal }),
  });
  const save = useMutation({
    mutationFn: (spec: ChannelSpec) =>
      isNew
        ? api("/api/v1/channels", { method: "POST", body: spec })
        : api(`/api/v1/channels/${encodeURIComponent(spec.name)}`, { method: "PUT", body: spec }),
    onSuccess: () => {
      setEditing(null);
      client.invalidateQueries({ queryKey: ["channels"] });
    },
    onError: (err) => {
      if (err instanceof ApiError && err.errors.length) setErrors({ form: err.errors.map((e) => `${e.loc}: ${e.msg}`).join("; ") });
    },
  });
  const remove = useMutation({
    mutationFn: (name: string) => api(`/api/v1/channels/${encodeURIComponent(name)}`, { method: "DELETE" }),
    onSuccess: () => client.invalidateQueries({ queryKey: ["channels"] }),
  });
  const test = useMutation({
    mutationFn: (name: string) =>
      api<{ status: string; http_status?: number | null; error?: string | null; attempts?: number }>(
        `/api/v1/channels/${encodeURIComponent(name)}/test`,
        { method: "POST" },
      ),
    onMutate: (name) => setTested((t) => ({ ...t, [name]: "sending…" })),
    onSuccess: (r, name) =>
      setTested((t) => ({
        ...t,
        [name]: r.status === "sent" ? `Test sent${r.http_status ? ` (HTTP ${r.http_status})` : ""}.` : `Test failed: ${r.error ?? r.status}`,
      })),
    onError: (err, name) => setTested((t) => ({ ...t, [name]: `Test failed: ${describeError(err)}` })),
  });

  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    if (!editing) return;
    const { spec, errors: found } = channelSpec(editing);
    setErrors(found);
    if (!Object.keys(found).length) save.mutate(spec);
  };
  const f = editing;
  const input = (key: keyof Form, label: string, hint?: string, type = "text") =>
    f && (
      <Field label={label} error={errors[key]} hint={hint}>
        {(p) => <input {...p} type={type} value={String(f[key])} onChange={(e) => setEditing({ ...f, [key]: e.target.value })} disabled={key === "name" && !isNew} />}
      </Field>
    );

  return (
    <section>
      <div className="page-head">
        <h1>Channels</h1>
        <button
          type="button"
          className="primary"
          {...needs(admin)}
          onClick={() => {
            setEditing({ ...EMPTY });
            setIsNew(true);
            setErrors({});
          }}
        >
          New channel
        </button>
      </div>
      {f && (
        <form className="panel channel-form" onSubmit={submit} noValidate aria-label={isNew ? "New channel" : `Edit channel ${f.name}`}>
          <h2>{isNew ? "New channel" : `Edit ${f.name}`}</h2>
          <div className="row">
            {input("name", "Name")}
            <Field label="Type">
              {(p) => (
                <select {...p} value={f.type} onChange={(e) => setEditing({ ...f, type: e.target.value as Form["type"] })}>
                  <option value="webhook">webhook</option>
                  <option value="slack">slack</option>
                  <option value="email">email</option>
                </select>
              )}
            </Field>
            <label className="check">
              <input type="checkbox" checked={f.enabled} onChange={(e) => setEditing({ ...f, enabled: e.target.checked })} /> Enabled
            </label>
          </div>
          {f.type === "webhook" && (
            <div className="row">
              {input("url", "URL", "the Alertmanager-format JSON is POSTed here")}
              <Field label="Headers" error={errors.headers} hint="name=value, one per line (secret: shown masked)">
                {(p) => <textarea {...p} rows={2} value={f.headers} onChange={(e) => setEditing({ ...f, headers: e.target.value })} />}
              </Field>
            </div>
          )}
          {f.type === "slack" && (
            <div className="row">
              {input("url", "Incoming webhook URL", "secret: shown masked")}
              {input("slackChannel", "Channel", "optional, e.g. #ops")}
            </div>
          )}
          {f.type === "email" && (
            <div className="row">
              {input("to", "To", "addresses, comma-separated")}
              {input("from", "From")}
              {input("smtpHost", "SMTP host")}
              {input("smtpPort", "SMTP port", undefined, "number")}
              <Field label="Security">
                {(p) => (
                  <select {...p} value={f.security} onChange={(e) => setEditing({ ...f, security: e.target.value })}>
                    <option>starttls</option>
                    <option>tls</option>
                    <option>none</option>
                  </select>
                )}
              </Field>
              {input("username", "User name")}
              {input("password", "Password", undefined, "password")}
            </div>
          )}
          <div className="row">
            <Field label="Also receive alerts with labels" error={errors.matchLabels} hint="name=value, one per line; empty: only rules naming this channel">
              {(p) => <textarea {...p} rows={2} value={f.matchLabels} onChange={(e) => setEditing({ ...f, matchLabels: e.target.value })} />}
            </Field>
            <Field label="Minimum severity">
              {(p) => (
                <select {...p} value={f.minSeverity} onChange={(e) => setEditing({ ...f, minSeverity: e.target.value })}>
                  <option>info</option>
                  <option>warning</option>
                  <option>critical</option>
                </select>
              )}
            </Field>
          </div>
          <div className="row">
            {input("groupBy", "Group by", "label names, comma-separated")}
            {input("groupWait", "Group wait (s)", undefined, "number")}
            {input("groupInterval", "Group interval (s)", undefined, "number")}
            {input("repeatInterval", "Repeat interval (s)", undefined, "number")}
          </div>
          {errors.form && (
            <p className="field-error" role="alert">
              {errors.form}
            </p>
          )}
          {save.isError && !errors.form && <ErrorBox error={save.error} />}
          <div className="actions-bar">
            <button type="submit" className="primary" disabled={save.isPending}>
              {isNew ? "Create channel" : "Save channel"}
            </button>
            <button type="button" onClick={() => setEditing(null)}>
              Cancel
            </button>
          </div>
        </form>
      )}
      {remove.isError && <ErrorBox error={remove.error} />}
      <Async query={channels} loading="Loading channels" empty="No channels yet: alerts are recorded but nobody is told.">
        {(data) => (
        <Table head={["Name", "Type", "Destination", "Grouping", "Actions"]}>
              {data.map((c) => {
                const cfg = c.spec.config as Record<string, unknown>;
                return (
                  <tr key={c.name}>
                    <th scope="row">
                      {c.name} {c.spec.enabled === false && <Badge kind="disabled" />}
                    </th>
                    <td>{c.spec.config.type}</td>
                    <td>
                      <code>{String(cfg.url ?? cfg.webhook_url ?? ((cfg.to as string[] | undefined) ?? []).join(", "))}</code>
                    </td>
                    <td>
                      by {(c.spec.group_by ?? []).join(", ") || "nothing"}; wait {c.spec.group_wait ?? 10} s
                    </td>
                    <td className="actions">
                      <button type="button" {...needs(admin)} onClick={() => test.mutate(c.name)} aria-label={`Send a test through ${c.name}`}>
                        Send test
                      </button>
                      <button
                        type="button"
                        {...needs(admin)}
                        onClick={() => {
                          setEditing(toForm(c));
                          setIsNew(false);
                          setErrors({});
                        }}
                        aria-label={`Edit channel ${c.name}`}
                      >
                        Edit
                      </button>
                      <button type="button" {...needs(admin)} onClick={() => window.confirm(`Delete channel ${c.name}?`) && remove.mutate(c.name)} aria-label={`Delete channel ${c.name}`}>
                        Delete
                      </button>
                      {tested[c.name] && (
                        <div role="status" className="small">
                          {tested[c.name]}
                        </div>
                      )}
                    </td>
                  </tr>
                );
              })}
            </Table>
        )}
      </Async>
      {!admin && <Notice>Creating, changing and testing channels needs a key with the admin scope.</Notice>}
    </section>
  );
}
