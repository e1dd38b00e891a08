// The signed-in key and what it may do (GET /api/v1/auth/whoami).

import { useQuery } from "@tanstack/react-query";
import { createContext, useContext, useEffect, useState, type ReactNode } from "react";
import { api, ApiError, getKey, onKeyChange, setKey } from "./api";
import type { Whoami } from "./types";

export type Scope = "read" | "admin" | "ingest" | "rules";

interface Auth {
  key: string;
  me: Whoami | undefined;
  loading: boolean;
  error: unknown;
  can: (scope: Scope) => boolean;
  signIn: (key: string) => void;
  signOut: () => void;
}

const AuthContext = createContext<Auth | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [key, setState] = useState(getKey);
  useEffect(() => onKeyChange(() => setState(getKey())), []);
  const who = useQuery({
    queryKey: ["whoami", key],
    queryFn: ({ signal }) => api<Whoami>("/api/v1/auth/whoami", { signal, key }),
    enabled: key !== "",
    retry: (count, err) => !(err instanceof ApiError && err.status === 401) && count < 3,
    staleTime: 60_000,
  });
  const me = who.data;
  const value: Auth = {
    key,
    me,
    loading: key !== "" && who.isPending,
    error: who.error,
    can: (scope) => Boolean(me?.grants[scope]),
    signIn: (k) => setKey(k.trim()),
    signOut: () => setKey(""),
  };
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): Auth {
  const auth = useContext(AuthContext);
  if (!auth) throw new Error("useAuth outside AuthProvider");
  return auth;
}
