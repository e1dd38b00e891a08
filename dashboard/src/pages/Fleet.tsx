// Fleet overview: one page of hosts per request (GET /api/v1/overview),
// with search, status and label filters, sorting and paging in the URL.

import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { Link } from "react-router";
import { Badge, Empty, ErrorBox, LabelChips, LabelFilterInput, Loading, Pager, Sparkline } from "../components/ui";
import { api, qs } from "../lib/api";
import { ago } from "../lib/time";
import type { Overview } from "../lib/types";
import { formatValue } from "../lib/units";
import { useRefresh, useView } from "../lib/view";

const PAGE = 50;
const FIRST_HOST_POLL = 3_000;
const COLUMNS: { key: string; label: string; sortable: boolean }[] = [
  { key: "host", label: "Host", sortable: true },
  { key: "status", label: "Status", sortable: true },
  { key: "last_seen", label: "Last seen", sortable: true },
  { key: "alerts", label: "Open alerts", sortable: true },
  { key: "cpu", label: "CPU", sortable: true },
  { key: "mem", label: "Memory", sortable: true },
  { key: "disk", label: "Disk", sortable: true },
  { key: "labels", label: "Labels", sortable: false },
];

export function Fleet() {
  const view = useView();
  const { interval } = useRefresh();
  const q = view.get("q");
  const status = view.get("status");
  const labels = view.getAll("label");
  const sort = view.get("sort", "host");
  const offset = Number(view.get("offset", "0")) || 0;
  const [search, setSearch] = useState(q);
  useEffect(() => setSearch(q), [q]);
  useEffect(() => {
    const timer = setTimeout(() => {
      if (search !== q) view.set({ q: search, offset: null }, { replace: true });
    }, 250);
    return () => clearTimeout(timer);
  }, [search, q, view]);

  const overview = useQuery({
    queryKey: ["overview", q, status, labels, sort, offset],
    queryFn: ({ signal }) =>
      api<Overview>(
        `/api/v1/overview${qs({ q, status: status || null, label: labels, sort, limit: PAGE, offset })}`,
        { signal },
      ),
    placeholderData: keepPreviousData,
    // An empty fleet is someone waiting for their first agent: look again
    // every few seconds, whatever the auto-refresh, until a host appears.
    refetchInterval: (query) =>
      query.state.data && query.state.data.total === 0 && !q && !status && !labels.length
        ? FIRST_HOST_POLL
        : interval,
  });

  const sortBy = (key: string) => {
    const current = sort.replace(/^-/, "");
    const next = current === key ? (sort.startsWith("-") ? key : `-${key}`) : ["cpu", "mem", "disk", "alerts", "last_seen"].includes(key) ? `-${key}` : key;
    view.set({ sort: next === "host" ? null : next, offset: null });
  };
  const addLabel = (k: string, v: string) => {
    const pair = `${k}=${v}`;
    if (!labels.includes(pair)) view.set({ label: [...labels, pair], offset: null });
  };
  const data = overview.data;
  const counts = data?.counts;
  const total = counts ? counts.up + counts.stale + counts.down : 0;

  return (
    <section>
      <div className="page-head">
        <h1>Fleet</h1>
        {overview.isFetching && <span className="spinner" role="status" aria-label="Refreshing" />}
      </div>
      <div className="toolbar" role="search">
        <label>
          <span>Search hosts</span>
          <input type="search" value={search} onChange={(e) => setSearch(e.target.value)} placeholder="name contains…" />
        </label>
        <div className="segmented" role="group" aria-label="Status">
          {["", "up", "stale", "down"].map((s) => (
            <button
              key={s || "all"}
              type="button"
              aria-pressed={status === s}
              onClick={() => view.set({ status: s || null, offset: null })}
            >
              {s || "All"}
              {counts && <span className="count">{s ? counts[s as "up"] : total}</span>}
            </button>
          ))}
        </div>
        <LabelFilterInput values={labels} placeholder="role=web" onChange={(l) => view.set({ label: l, offset: null })} />
      </div>
      {overview.isPending ? (
        <Loading what="Loading hosts" />
      ) : overview.isError && !data ? (
        <ErrorBox error={overview.error} retry={() => overview.refetch()} />
      ) : data && data.hosts.length === 0 ? (
        <Empty>
          {q || status || labels.length
            ? "No host matches these filters."
            : "No host has sent samples yet. Start an agent (docs/agent.md) or push samples to /api/v1/metrics."}
        </Empty>
      ) : (
        data && (
          <>
            {overview.isError && <ErrorBox error={overview.error} />}
            <div className="table-wrap">
              <table className="fleet">
                <caption className="visually-hidden">Hosts, sorted by {sort.replace(/^-/, "")}</caption>
                <thead>
                  <tr>
                    {COLUMNS.map((c) => {
                      const active = sort.replace(/^-/, "") === c.key;
                      const dir = active ? (sort.startsWith("-") ? "descending" : "ascending") : "none";
                      return (
                        <th key={c.key} scope="col" aria-sort={c.sortable ? dir : undefined}>
                          {c.sortable ? (
                            <button type="button" className="sort" onClick={() => sortBy(c.key)}>
                              {c.label}
                              <span aria-hidden="true">{active ? (dir === "descending" ? " ▼" : " ▲") : ""}</span>
                            </button>
                          ) : (
                            c.label
                          )}
                        </th>
                      );
                    })}
                  </tr>
                </thead>
                <tbody>
                  {data.hosts.map((h) => (
                    <tr key={h.host}>
                      <th scope="row">
                        <Link to={`/hosts/${encodeURIComponent(h.host)}`}>{h.host}</Link>
                      </th>
                      <td>
                        <Badge kind={h.status} />
                      </td>
                      <td title={h.last_sample}>{ago(h.last_sample)}</td>
                      <td>
                        {h.open_alerts ? (
                          <Link to={`/alerts?state=open&host=${encodeURIComponent(h.host)}`} className={h.firing_alerts ? "alert-count firing" : "alert-count"}>
                            {h.open_alerts}
                          </Link>
                        ) : (
                          <span className="muted">0</span>
                        )}
                      </td>
                      {(["cpu", "mem", "disk"] as const).map((k) => (
                        <td key={k} className="metric-cell">
                          <Sparkline points={h.spark[k]} label={`${k} over the last hour`} />
                          <span className="num">{formatValue(h.latest[k], "percent")}</span>
                        </td>
                      ))}
                      <td>
                        <LabelChips labels={h.labels} onPick={addLabel} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pager offset={offset} limit={PAGE} total={data.total} onPage={(o) => view.set({ offset: o ? String(o) : null })} />
          </>
        )
      )}
    </section>
  );
}
