// Rules: list, enable / disable, delete; rules managed by Kubernetes are
// shown read-only with their source.

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link } from "react-router";
import { Async, Badge, ErrorBox, Table, needs } from "../components/ui";
import { api } from "../lib/api";
import { useAuth } from "../lib/auth";
import { describeSeconds, managedBy } from "../lib/ruleForm";
import type { RuleSpec, Stored } from "../lib/types";
import { useRefresh } from "../lib/view";

function condition(spec: RuleSpec): string {
  const p = spec.params as Record<string, unknown>;
  switch (spec.params.kind) {
    case "threshold":
      return `${spec.metric} ${p.comparator ?? ">"} ${p.value}${p.recovery_value !== undefined && p.recovery_value !== null ? ` (recovers at ${p.recovery_value})` : ""}`;
    case "baseline":
      return `${spec.metric} outside ${p.band ?? 4} deviations (${p.direction ?? "both"})`;
    case "anomaly":
      return `${spec.metric} anomalous (score ≥ ${p.score_threshold ?? 0.5})`;
    case "forecast":
      return `${spec.metric} expected ${p.direction === "below" ? "below" : "above"} ${p.value} within ${describeSeconds(Number(p.horizon ?? 604800))}`;
    case "burn_rate":
      return `SLO ${p.slo} burning its error budget too fast`;
    default:
      return spec.metric ? `${spec.metric} silent for ${p.after ?? 300} s` : `host silent for ${p.after ?? 300} s`;
  }
}

export default function Rules() {
  const auth = useAuth();
  const { interval } = useRefresh();
  const client = useQueryClient();
  const rules = useQuery({
    queryKey: ["rules"],
    queryFn: ({ signal }) => api<Stored<RuleSpec>[]>("/api/v1/rules", { signal }),
    refetchInterval: interval,
  });
  const update = useMutation({
    mutationFn: (spec: RuleSpec) => api(`/api/v1/rules/${encodeURIComponent(spec.name)}`, { method: "PUT", body: spec }),
    onSuccess: () => client.invalidateQueries({ queryKey: ["rules"] }),
  });
  const remove = useMutation({
    mutationFn: (name: string) => api(`/api/v1/rules/${encodeURIComponent(name)}`, { method: "DELETE" }),
    onSuccess: () => client.invalidateQueries({ queryKey: ["rules"] }),
  });
  const admin = auth.can("rules") || auth.can("admin");
  return (
    <section>
      <div className="page-head">
        <h1>Rules</h1>
        {admin && (
          <Link to="/rules/new" className="button primary">
            New rule
          </Link>
        )}
      </div>
      {(update.isError || remove.isError) && <ErrorBox error={update.error ?? remove.error} />}
      <Async query={rules} loading="Loading rules" empty={<>No rules yet.{admin ? " Create one with New rule." : ""}</>}>
        {(data) => (
        <Table head={["Name", "Kind", "Condition", "Severity", "Enabled", "Managed by", "Actions"]}>
              {data.map((r) => {
                const managed = managedBy(r);
                const editable = admin && !managed;
                const reason = managed ? `Managed by ${managed}: change it there` : "Needs a key with the rules or admin scope";
                return (
                  <tr key={r.name}>
                    <th scope="row">
                      <Link to={`/rules/${encodeURIComponent(r.name)}`}>{r.name}</Link>
                      {r.spec.description && <div className="muted small">{r.spec.description}</div>}
                    </th>
                    <td>{r.spec.params.kind}</td>
                    <td>
                      <code>{condition(r.spec)}</code>
                    </td>
                    <td>
                      <Badge kind={r.spec.severity ?? "warning"} />
                    </td>
                    <td>
                      <label className="switch">
                        <input
                          type="checkbox"
                          checked={r.spec.enabled !== false}
                          disabled={!editable || update.isPending}
                          title={editable ? undefined : reason}
                          onChange={(e) => update.mutate({ ...r.spec, enabled: e.target.checked })}
                          aria-label={`${r.name} enabled`}
                        />
                        <span aria-hidden="true">{r.spec.enabled !== false ? "on" : "off"}</span>
                      </label>
                    </td>
                    <td>{managed ? <Badge kind="managed">{managed}</Badge> : <span className="muted">API / dashboard</span>}</td>
                    <td className="actions">
                      <Link to={`/rules/${encodeURIComponent(r.name)}`}>{editable ? "Edit" : "View"}</Link>
                      <button
                        type="button"
                        {...needs(editable)}
                        title={editable ? undefined : reason}
                        onClick={() => window.confirm(`Delete rule ${r.name}? Its open alerts resolve.`) && remove.mutate(r.name)}
                        aria-label={`Delete rule ${r.name}`}
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
    </section>
  );
}
