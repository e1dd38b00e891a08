// Delivery attempts, failed notifications (dead letters) and their replay.

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Async, Badge, ErrorBox, Table, needs } from "../components/ui";
import { api, qs } from "../lib/api";
import { useAuth } from "../lib/auth";
import { formatIso } from "../lib/time";
import type { DeadLetters, Delivery } from "../lib/types";
import { useRefresh, useView } from "../lib/view";

const STATUSES = ["", "sent", "retry", "failed", "short_circuited", "silenced"];

export default function Deliveries() {
  const auth = useAuth();
  const view = useView();
  const { tz, interval } = useRefresh();
  const client = useQueryClient();
  const channel = view.get("channel");
  const status = view.get("status");
  const admin = auth.can("admin");
  const deliveries = useQuery({
    queryKey: ["deliveries", channel, status],
    queryFn: ({ signal }) => api<Delivery[]>(`/api/v1/deliveries${qs({ channel: channel || null, status: status || null, limit: 200 })}`, { signal }),
    refetchInterval: interval,
  });
  const dlq = useQuery({
    queryKey: ["dlq"],
    queryFn: ({ signal }) => api<DeadLetters>("/api/v1/dlq?limit=100", { signal }),
    refetchInterval: interval,
  });
  const queues = useQuery({
    queryKey: ["dlq-queues"],
    queryFn: ({ signal }) => api<{ queue: string; messages: number | null }[]>("/api/v1/dlq/queues", { signal }),
    refetchInterval: interval,
  });
  const replay = useMutation({
    mutationFn: (queue: string) => api<{ replayed: number; remaining: number | null }>("/api/v1/dlq/replay", { method: "POST", body: { queue } }),
    onSuccess: () => client.invalidateQueries({ predicate: (q) => String(q.queryKey[0]).startsWith("dlq") || q.queryKey[0] === "deliveries" }),
  });
  return (
    <section>
      <h1>Deliveries</h1>
      <h2>Dead-letter queues</h2>
      <Async query={queues}>
        {(data) => (
        <ul className="queues">
          {data.map((q) => (
            <li key={q.queue}>
              <code>{q.queue}</code>: {q.messages ?? "not declared"} message{q.messages === 1 ? "" : "s"}{" "}
              <button type="button" {...needs(admin)} disabled={!admin || !q.messages || replay.isPending} onClick={() => replay.mutate(q.queue)}>
                Replay
              </button>
            </li>
          ))}
        </ul>
        )}
      </Async>
      {replay.isError && <ErrorBox error={replay.error} />}
      {replay.data && (
        <p role="status" className="notice notice-ok">
          Replayed {replay.data.replayed} message{replay.data.replayed === 1 ? "" : "s"}; {replay.data.remaining ?? 0} left.
        </p>
      )}
      <h2>Failed notifications</h2>
      <Async query={dlq} isEmpty={(data) => !data.items.length} empty="No failed notifications.">
        {(data) => (
        <Table head={["Failed at", "Channel", "Kind", "Alerts", "Attempts", "Error"]}>
              {data.items.map((n) => (
                <tr key={n.notification_id}>
                  <td>{formatIso(n.failed_at, tz)}</td>
                  <td>{n.channel}</td>
                  <td>{n.kind}</td>
                  <td>{n.alerts.map((a) => `${a.rule} on ${a.host}`).join(", ")}</td>
                  <td className="num">{n.attempts}</td>
                  <td>{n.error}</td>
                </tr>
              ))}
            </Table>
        )}
      </Async>
      <h2>Delivery attempts</h2>
      <div className="toolbar" role="search">
        <label>
          <span>Channel</span>
          <input defaultValue={channel} onBlur={(e) => view.set({ channel: e.target.value.trim() || null })} placeholder="any" />
        </label>
        <label>
          <span>Status</span>
          <select value={status} onChange={(e) => view.set({ status: e.target.value || null })}>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s || "any"}
              </option>
            ))}
          </select>
        </label>
      </div>
      <Async query={deliveries} empty="No delivery attempts recorded.">
        {(data) => (
        <Table head={["At", "Channel", "Kind", "Status", "Attempt", "Endpoint", "HTTP", "Error"]}>
              {data.map((d) => (
                <tr key={d.id}>
                  <td>{formatIso(d.at, tz)}</td>
                  <td>{d.channel}</td>
                  <td>{d.kind}</td>
                  <td>
                    <Badge kind={d.status} />
                  </td>
                  <td className="num">{d.attempt}</td>
                  <td>
                    <code>{d.endpoint}</code>
                  </td>
                  <td className="num">{d.http_status ?? "–"}</td>
                  <td>{d.error}</td>
                </tr>
              ))}
            </Table>
        )}
      </Async>
    </section>
  );
}
