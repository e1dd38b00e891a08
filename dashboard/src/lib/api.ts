// The API client: the key as a bearer token, JSON in and out, problem+json
// errors as ApiError (status, title, detail, per-field errors).

export interface FieldError {
  loc: string;
  msg: string;
}

export class ApiError extends Error {
  status: number;
  title: string;
  detail: string;
  errors: FieldError[];

  constructor(status: number, title: string, detail: string, errors: FieldError[] = []) {
    super(detail || title);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.errors = errors;
  }
}

const KEY = "nazar.key";
type Listener = () => void;
const listeners = new Set<Listener>();

export function getKey(): string {
  return localStorage.getItem(KEY) ?? "";
}

export function setKey(key: string): void {
  if (key) localStorage.setItem(KEY, key);
  else localStorage.removeItem(KEY);
  listeners.forEach((l) => l());
}

export function onKeyChange(listener: Listener): () => void {
  listeners.add(listener);
  const storage = (e: StorageEvent) => {
    if (e.key === KEY) listener();
  };
  window.addEventListener("storage", storage);
  return () => {
    listeners.delete(listener);
    window.removeEventListener("storage", storage);
  };
}

/** Query string of ``params``; arrays repeat the name; empty values are left out. */
export function qs(params: Record<string, string | number | boolean | string[] | null | undefined>): string {
  const out = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "") continue;
    if (Array.isArray(value)) value.filter((v) => v !== "").forEach((v) => out.append(name, v));
    else out.append(name, String(value));
  }
  const s = out.toString();
  return s ? `?${s}` : "";
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
  key?: string;
}

const TIMEOUT_MS = 30_000;

export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const key = options.key ?? getKey();
  const headers: Record<string, string> = { Accept: "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), TIMEOUT_MS);
  const onAbort = () => timeout.abort();
  options.signal?.addEventListener("abort", onAbort);
  let response: Response;
  try {
    response = await fetch(path, {
      method: options.method ?? "GET",
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: timeout.signal,
    });
  } catch (err) {
    if (options.signal?.aborted) throw err;
    throw new ApiError(0, "Unreachable", "the server did not answer; check the connection");
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let data: unknown = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!response.ok) {
    const p = (data ?? {}) as { title?: string; detail?: string; errors?: FieldError[] };
    throw new ApiError(
      response.status,
      p.title ?? response.statusText,
      p.detail ?? (text.slice(0, 200) || response.statusText),
      Array.isArray(p.errors) ? p.errors : [],
    );
  }
  return data as T;
}

export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 0) return "The server is unreachable. Retrying shortly.";
    if (err.status === 401) return "The API key was not accepted (unknown or revoked).";
    if (err.status === 403) return "This API key may not do this.";
    if (err.status === 503) return `The service is unavailable for now: ${err.detail}`;
    const fields = err.errors.map((e) => `${e.loc}: ${e.msg}`).join("; ");
    return fields ? `${err.detail} (${fields})` : err.detail || err.title;
  }
  return err instanceof Error ? err.message : String(err);
}
