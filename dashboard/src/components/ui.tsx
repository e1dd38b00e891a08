// Small shared pieces: states of a request, badges, labels, paging, sparklines.

import type { UseQueryResult } from "@tanstack/react-query";
import { useId, useState, type ReactNode } from "react";
import { describeError } from "../lib/api";
import type { Labels } from "../lib/types";

export function Loading({ what = "Loading" }: { what?: string }) {
  return (
    <p className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> {what}…
    </p>
  );
}

export function ErrorBox({ error, retry }: { error: unknown; retry?: () => void }) {
  return (
    <div className="error" role="alert">
      <span>{describeError(error)}</span>
      {retry && (
        <button type="button" onClick={retry}>
          Retry
        </button>
      )}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}

export function Notice({ children, kind = "info" }: { children: ReactNode; kind?: "info" | "ok" | "warn" }) {
  return (
    <div className={`notice notice-${kind}`} role="status">
      {children}
    </div>
  );
}

export function Badge({ kind, children }: { kind: string; children?: ReactNode }) {
  return <span className={`badge badge-${kind}`}>{children ?? kind}</span>;
}

export function LabelChips({ labels, onPick }: { labels: Labels; onPick?: (k: string, v: string) => void }) {
  const entries = Object.entries(labels);
  if (!entries.length) return null;
  return (
    <ul className="chips" aria-label="labels">
      {entries.map(([k, v]) => (
        <li key={k}>
          {onPick ? (
            <button type="button" className="chip" onClick={() => onPick(k, v)} title={`Filter by ${k}=${v}`}>
              {k}={v}
            </button>
          ) : (
            <span className="chip">
              {k}={v}
            </span>
          )}
        </li>
      ))}
    </ul>
  );
}

export function Pager({
  offset,
  limit,
  total,
  onPage,
}: {
  offset: number;
  limit: number;
  total: number;
  onPage: (offset: number) => void;
}) {
  const pages = Math.max(1, Math.ceil(total / limit));
  const page = Math.floor(offset / limit) + 1;
  return (
    <nav className="pager" aria-label="pages">
      <button type="button" disabled={page <= 1} onClick={() => onPage(0)} aria-label="First page">
        «
      </button>
      <button type="button" disabled={page <= 1} onClick={() => onPage(offset - limit)} aria-label="Previous page">
        ‹
      </button>
      <span aria-live="polite">
        Page {page} of {pages} ({total.toLocaleString("en")} total)
      </span>
      <button type="button" disabled={page >= pages} onClick={() => onPage(offset + limit)} aria-label="Next page">
        ›
      </button>
      <button
        type="button"
        disabled={page >= pages}
        onClick={() => onPage((pages - 1) * limit)}
        aria-label="Last page"
      >
        »
      </button>
    </nav>
  );
}

/** A tiny line of recent values (0-100 for percentages). */
export function Sparkline({ points, max = 100, label }: { points: [number, number][]; max?: number; label: string }) {
  const w = 80;
  const h = 20;
  if (points.length < 2) return <svg className="spark" width={w} height={h} role="img" aria-label={`${label}: no recent data`} />;
  const t0 = points[0][0];
  const t1 = points[points.length - 1][0];
  const span = Math.max(1, t1 - t0);
  const top = Math.max(max, ...points.map((p) => p[1]));
  const d = points
    .map(([t, v], i) => `${i ? "L" : "M"}${(((t - t0) / span) * (w - 2) + 1).toFixed(1)},${(h - 1 - (v / top) * (h - 2)).toFixed(1)}`)
    .join("");
  return (
    <svg className="spark" width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label={label}>
      <path d={d} />
    </svg>
  );
}

/** A labelled form field; ``error`` is announced and linked to the input. */
export function Field({
  label,
  error,
  hint,
  children,
}: {
  label: string;
  error?: string;
  hint?: string;
  children: (props: { id: string; "aria-invalid": boolean; "aria-describedby"?: string }) => ReactNode;
}) {
  const id = useId();
  const described = [error ? `${id}-err` : "", hint ? `${id}-hint` : ""].filter(Boolean).join(" ") || undefined;
  return (
    <div className={`field${error ? " field-invalid" : ""}`}>
      <label htmlFor={id}>{label}</label>
      {children({ id, "aria-invalid": Boolean(error), "aria-describedby": described })}
      {hint && (
        <small id={`${id}-hint`} className="hint">
          {hint}
        </small>
      )}
      {error && (
        <small id={`${id}-err`} className="field-error">
          {error}
        </small>
      )}
    </div>
  );
}

/** A button that needs a scope: disabled with the reason when the key lacks it. */
export function needs(allowed: boolean, scope = "admin"): { disabled?: boolean; title?: string } {
  return allowed ? {} : { disabled: true, title: `Needs a key with the ${scope} scope` };
}

/** A table in its scrolling frame, with column headers. */
export function Table({ head, className, caption, children }: { head: ReactNode[]; className?: string; caption?: string; children: ReactNode }) {
  return (
    <div className="table-wrap">
      <table className={className}>
        {caption && <caption className="visually-hidden">{caption}</caption>}
        <thead>
          <tr>
            {head.map((h, i) => (
              <th key={i} scope="col">
                {h}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

/**
 * A query's states in one place: loading, error (with Retry), empty, or
 * its data. While refreshing, the previous data stay on screen.
 */
export function Async<T>({
  query,
  loading,
  empty,
  isEmpty,
  children,
}: {
  query: UseQueryResult<T>;
  loading?: string;
  empty?: ReactNode;
  isEmpty?: (data: T) => boolean;
  children: (data: T) => ReactNode;
}) {
  if (query.isPending) return <Loading what={loading} />;
  if (query.isError && query.data === undefined) return <ErrorBox error={query.error} retry={() => query.refetch()} />;
  const data = query.data as T;
  const blank = isEmpty ? isEmpty(data) : Array.isArray(data) && data.length === 0;
  return (
    <>
      {query.isError && <ErrorBox error={query.error} />}
      {blank && empty !== undefined ? <Empty>{empty}</Empty> : children(data)}
    </>
  );
}

/** Active filters as chips; pressing one removes it. */
export function FilterChips({ values, label, onChange }: { values: string[]; label: string; onChange: (values: string[]) => void }) {
  if (!values.length) return null;
  return (
    <ul className="chips" aria-label={label}>
      {values.map((v) => (
        <li key={v}>
          <button type="button" className="chip chip-remove" onClick={() => onChange(values.filter((x) => x !== v))} aria-label={`Remove ${v}`}>
            {v} ×
          </button>
        </li>
      ))}
    </ul>
  );
}

const PAIR = /^[A-Za-z_][A-Za-z0-9_]*=.+$/;

/** A ``name=value`` input that adds a label filter on Enter. */
export function LabelFilterInput({
  values,
  onChange,
  label = "Label filter",
  placeholder = "name=value",
  suggestions,
}: {
  values: string[];
  onChange: (values: string[]) => void;
  label?: string;
  placeholder?: string;
  suggestions?: string[];
}) {
  const id = useId();
  const [text, setText] = useState("");
  const add = () => {
    const pair = text.trim().replace(/\s*=\s*/, "=");
    if (!PAIR.test(pair)) return;
    if (!values.includes(pair)) onChange([...values, pair]);
    setText("");
  };
  return (
    <div className="multi">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        value={text}
        placeholder={placeholder}
        list={suggestions ? `${id}-options` : undefined}
        aria-invalid={text !== "" && !PAIR.test(text.trim()) ? true : undefined}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter") {
            e.preventDefault();
            add();
          }
        }}
      />
      {suggestions && (
        <datalist id={`${id}-options`}>
          {suggestions.map((s) => (
            <option key={s} value={s} />
          ))}
        </datalist>
      )}
      <FilterChips values={values} label={`${label}s`} onChange={onChange} />
    </div>
  );
}
