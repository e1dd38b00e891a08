import { useState } from "react";
import { api, ApiError, describeError } from "../lib/api";
import { useAuth } from "../lib/auth";
import type { Whoami } from "../lib/types";

export function SignIn({ problem }: { problem?: string }) {
  const auth = useAuth();
  const [key, setKey] = useState("");
  const [error, setError] = useState(problem ?? "");
  const [busy, setBusy] = useState(false);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      await api<Whoami>("/api/v1/auth/whoami", { key: key.trim() });
      auth.signIn(key);
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? "This key was not accepted (unknown or revoked)." : describeError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="signin">
      <h1>Sign in</h1>
      <p>
        Enter an API key. A key with the <code>read</code> scope shows everything; changing rules, channels, silences
        and acknowledging alerts needs <code>admin</code>. Create one with{" "}
        <code>nazar keys create --scope read --name dashboard</code>.
      </p>
      <form onSubmit={submit}>
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={key}
          onChange={(e) => setKey(e.target.value)}
          placeholder="nzr_…"
          required
          aria-invalid={Boolean(error)}
          aria-describedby={error ? "signin-error" : undefined}
        />
        <button type="submit" disabled={busy || !key.trim()}>
          {busy ? "Checking…" : "Sign in"}
        </button>
        {error && (
          <p id="signin-error" className="field-error" role="alert">
            {error}
          </p>
        )}
      </form>
      <p className="hint">
        The key is kept in this browser (local storage) and sent only to this server. Use <em>Forget key</em> on
        shared machines.
      </p>
    </section>
  );
}
