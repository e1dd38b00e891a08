// Rendering a page as the app does (query client, router, signed-in key)
// with fetch answered by per-path handlers.

import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { MemoryRouter, Route, Routes, useLocation } from "react-router";
import { vi } from "vitest";
import { AuthProvider } from "../lib/auth";

export type Handler = (url: URL, init: RequestInit) => unknown;

export const ADMIN = { key_id: "a1", name: "ops", scopes: ["admin"], grants: { admin: true, read: true, ingest: true } };
export const READER = { key_id: "r1", name: "wall", scopes: ["read"], grants: { admin: false, read: true, ingest: false } };

export interface Calls {
  requests: { method: string; url: URL; body: unknown }[];
}

/** ``fetch`` answering from ``handlers`` (longest matching path prefix wins). */
export function stubFetch(handlers: Record<string, Handler>): Calls {
  const calls: Calls = { requests: [] };
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: string, init: RequestInit = {}) => {
      const url = new URL(input, "http://nazar.test");
      const body = init.body ? JSON.parse(String(init.body)) : undefined;
      calls.requests.push({ method: init.method ?? "GET", url, body });
      const match = Object.keys(handlers)
        .filter((p) => url.pathname.startsWith(p.split(" ").pop()!) && (!p.includes(" ") || p.startsWith(`${init.method ?? "GET"} `)))
        .sort((a, b) => b.length - a.length)[0];
      if (!match) return new Response(JSON.stringify({ title: "Not found", detail: url.pathname }), { status: 404 });
      const out = handlers[match](url, init);
      if (out instanceof Response) return out;
      return new Response(JSON.stringify(out), { status: 200, headers: { "Content-Type": "application/json" } });
    }),
  );
  return calls;
}

export function problem(status: number, detail: string, errors: { loc: string; msg: string }[] = []): Response {
  return new Response(JSON.stringify({ title: "Problem", status, detail, errors }), {
    status,
    headers: { "Content-Type": "application/problem+json" },
  });
}

let location = "";
function Where() {
  const l = useLocation();
  location = `${l.pathname}${l.search}`;
  return null;
}
export const currentLocation = () => location;

export function renderPage(element: ReactElement, { route = "/", path = "*", key = "nzr_a1_secret" } = {}) {
  if (key) localStorage.setItem("nazar.key", key);
  const client = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <MemoryRouter initialEntries={[route]}>
        <AuthProvider>
          <Where />
          <Routes>
            <Route path={path} element={element} />
            {path !== "*" && <Route path="*" element={null} />}
          </Routes>
        </AuthProvider>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}
