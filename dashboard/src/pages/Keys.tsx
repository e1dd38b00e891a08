// API keys (admin scope): list, create (the key is shown once), revoke.

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Async, ErrorBox, Table } from "../components/ui";
import { api } from "../lib/api";
import { useAuth } from "../lib/auth";
import { ago, formatIso } from "../lib/time";
import type { ApiKey } from "../lib/types";
import { useRefresh } from "../lib/view";

export default function Keys() {
  const auth = useAuth();
  const { tz } = useRefresh();
  const client = useQueryClient();
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<string[]>(["read"]);
  const [created, setCreated] = useState<ApiKey | null>(null);
  const keys = useQuery({ queryKey: ["keys"], queryFn: ({ signal }) => api<ApiKey[]>("/api/v1/keys", { signal }) });
  const create = useMutation({
    mutationFn: () => api<ApiKey>("/api/v1/keys", { method: "POST", body: { name, scopes } }),
    onSuccess: (k) => {
      setCreated(k);
      setName("");
      client.invalidateQueries({ queryKey: ["keys"] });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => api(`/api/v1/keys/${encodeURIComponent(id)}`, { method: "DELETE" }),
    onSuccess: () => client.invalidateQueries({ queryKey: ["keys"] }),
  });
  return (
    <section>
      <h1>API keys</h1>
      <form
        className="panel"
        aria-label="New key"
        onSubmit={(e) => {
          e.preventDefault();
          if (scopes.length) create.mutate();
        }}
      >
        <h2>New key</h2>
        <div className="row">
          <label>
            <span>Name</span>
            <input value={name} onChange={(e) => setName(e.target.value)} maxLength={200} placeholder="e.g. web agents" />
          </label>
          <fieldset className="days">
            <legend>Scopes</legend>
            {["ingest", "read", "rules", "admin"].map((s) => (
              <label key={s} className="check">
                <input type="checkbox" checked={scopes.includes(s)} onChange={(e) => setScopes(e.target.checked ? [...scopes, s] : scopes.filter((x) => x !== s))} /> {s}
              </label>
            ))}
          </fieldset>
          <button type="submit" className="primary" disabled={!scopes.length || create.isPending}>
            Create key
          </button>
        </div>
        {create.isError && <ErrorBox error={create.error} />}
        {created?.key && (
          <div className="notice notice-ok" role="status">
            <p>
              Key <strong>{created.name || created.key_id}</strong> created. Copy it now: it is not shown again.
            </p>
            <input readOnly value={created.key} aria-label="The new key" onFocus={(e) => e.target.select()} className="key-value" />
          </div>
        )}
      </form>
      {revoke.isError && <ErrorBox error={revoke.error} />}
      <Async query={keys} empty="No keys.">
        {(data) => (
        <Table head={["Key id", "Name", "Scopes", "Created", "Last used", "Actions"]}>
              {data.map((k) => (
                <tr key={k.key_id} className={k.revoked_at ? "muted" : undefined}>
                  <th scope="row">
                    <code>{k.key_id}</code>
                  </th>
                  <td>{k.name}</td>
                  <td>{k.scopes.join(", ")}</td>
                  <td>{formatIso(k.created_at, tz)}</td>
                  <td>{k.last_used_at ? ago(k.last_used_at) : "–"}</td>
                  <td>
                    {k.revoked_at ? (
                      `revoked ${formatIso(k.revoked_at, tz)}`
                    ) : (
                      <button
                        type="button"
                        onClick={() =>
                          window.confirm(k.key_id === auth.me?.key_id ? "Revoke the key you are signed in with?" : `Revoke key ${k.key_id}?`) &&
                          revoke.mutate(k.key_id)
                        }
                      >
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </Table>
        )}
      </Async>
    </section>
  );
}
