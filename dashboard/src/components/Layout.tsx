// The frame of every page: skip link, navigation, view options, the key.

import { useEffect, useState, type ReactNode } from "react";
import { NavLink, useLocation } from "react-router";
import { useAuth } from "../lib/auth";
import { useTheme, type ThemeChoice } from "../lib/theme";
import { ViewOptions } from "./TimeRange";

const NAV: { to: string; label: string; admin?: boolean }[] = [
  { to: "/", label: "Fleet" },
  { to: "/explore", label: "Explore" },
  { to: "/capacity", label: "Capacity" },
  { to: "/alerts", label: "Alerts" },
  { to: "/rules", label: "Rules" },
  { to: "/slos", label: "SLOs" },
  { to: "/channels", label: "Channels" },
  { to: "/silences", label: "Silences" },
  { to: "/deliveries", label: "Deliveries" },
  { to: "/keys", label: "API keys", admin: true },
];

/** Keeps the view options (zone, refresh) when moving between pages. */
function carry(search: string): string {
  const from = new URLSearchParams(search);
  const out = new URLSearchParams();
  for (const name of ["tz", "refresh"]) {
    const v = from.get(name);
    if (v) out.set(name, v);
  }
  const s = out.toString();
  return s ? `?${s}` : "";
}

export function Layout({ children }: { children: ReactNode }) {
  const auth = useAuth();
  const location = useLocation();
  const [theme, setTheme] = useTheme();
  const [menu, setMenu] = useState(false);
  useEffect(() => setMenu(false), [location.pathname]);
  const next: Record<ThemeChoice, ThemeChoice> = { system: "light", light: "dark", dark: "system" };
  const keep = carry(location.search);
  return (
    <div className="app">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <NavLink to={`/${keep}`} className="brand" aria-label="Nazar home">
          <svg viewBox="0 0 32 32" width="22" height="22" aria-hidden="true">
            <circle cx="16" cy="16" r="15" fill="#1d4ed8" />
            <circle cx="16" cy="16" r="10" fill="#fff" />
            <circle cx="16" cy="16" r="6" fill="#60a5fa" />
            <circle cx="16" cy="16" r="3" fill="#0b1220" />
          </svg>
          Nazar
        </NavLink>
        <button
          type="button"
          className="menu-button"
          aria-expanded={menu}
          aria-controls="main-nav"
          onClick={() => setMenu(!menu)}
        >
          Menu
        </button>
        <nav id="main-nav" className={menu ? "nav open" : "nav"} aria-label="Main">
          <ul>
            {NAV.filter((n) => !n.admin || auth.can("admin")).map((n) => (
              <li key={n.to}>
                <NavLink to={`${n.to}${keep}`} end={n.to === "/"}>
                  {n.label}
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <div className="topbar-tools">
          <ViewOptions />
          <button
            type="button"
            className="theme-toggle"
            onClick={() => setTheme(next[theme])}
            aria-label={`Theme: ${theme}. Switch to ${next[theme]}`}
            title={`Theme: ${theme}`}
          >
            {theme === "dark" ? "☾" : theme === "light" ? "☀" : "◐"}
          </button>
          {auth.key && (
            <span className="who">
              <span className="who-name" title={auth.me ? `key ${auth.me.key_id}` : undefined}>
                {auth.me ? `${auth.me.name || auth.me.key_id} (${auth.me.scopes.join(", ")})` : "…"}
              </span>
              <button type="button" onClick={auth.signOut}>
                Forget key
              </button>
            </span>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}
