import { lazy, Suspense, useEffect } from "react";
import { Navigate, Route, Routes, useLocation, useNavigate } from "react-router";
import { Layout } from "./components/Layout";
import { ErrorBox, Loading } from "./components/ui";
import { ApiError } from "./lib/api";
import { useAuth } from "./lib/auth";
import { Fleet } from "./pages/Fleet";
import { SignIn } from "./pages/SignIn";

// Pages with charts (uPlot) and forms load on first use.
const Host = lazy(() => import("./pages/Host"));
const Explore = lazy(() => import("./pages/Explore"));
const Alerts = lazy(() => import("./pages/Alerts"));
const AlertDetail = lazy(() => import("./pages/AlertDetail"));
const Rules = lazy(() => import("./pages/Rules"));
const RuleEditor = lazy(() => import("./pages/RuleEditor"));
const Channels = lazy(() => import("./pages/Channels"));
const Silences = lazy(() => import("./pages/Silences"));
const Deliveries = lazy(() => import("./pages/Deliveries"));
const Keys = lazy(() => import("./pages/Keys"));
const Capacity = lazy(() => import("./pages/Capacity"));
const Slos = lazy(() => import("./pages/Slos"));

/** Links of the earlier dashboard and of notifications: /#/alerts/7, #hosts/web-1/cpu. */
function LegacyHash() {
  const location = useLocation();
  const navigate = useNavigate();
  useEffect(() => {
    const hash = location.hash.replace(/^#\/?/, "");
    if (!hash) return;
    const [page, a, b] = hash.split("/").map(decodeURIComponent);
    if (page === "alerts" && a) navigate(`/alerts/${encodeURIComponent(a)}`, { replace: true });
    else if (page === "alerts") navigate("/alerts", { replace: true });
    else if (page === "hosts" && a && b) navigate(`/explore?metric=${encodeURIComponent(b)}&host=${encodeURIComponent(a)}`, { replace: true });
    else if (page === "hosts" && a) navigate(`/hosts/${encodeURIComponent(a)}`, { replace: true });
  }, [location.hash, navigate]);
  return null;
}

export function App() {
  const auth = useAuth();
  let body;
  if (!auth.key) body = <SignIn />;
  else if (auth.loading) body = <Loading what="Checking the key" />;
  else if (auth.error instanceof ApiError && auth.error.status === 401)
    body = <SignIn problem="The stored key is no longer accepted (unknown or revoked). Enter another." />;
  else if (auth.error) body = <ErrorBox error={auth.error} />;
  else if (!auth.can("read"))
    body = (
      <section>
        <h1>This key cannot read</h1>
        <p>
          The key has the scope(s) <code>{auth.me?.scopes.join(", ")}</code>: it can send samples but not see them.
          Use <em>Forget key</em> and sign in with a <code>read</code> or <code>admin</code> key.
        </p>
      </section>
    );
  else
    body = (
      <Suspense fallback={<Loading />}>
        <LegacyHash />
        <Routes>
          <Route path="/" element={<Fleet />} />
          <Route path="/hosts/:host" element={<Host />} />
          <Route path="/explore" element={<Explore />} />
          <Route path="/capacity" element={<Capacity />} />
          <Route path="/alerts" element={<Alerts />} />
          <Route path="/alerts/:id" element={<AlertDetail />} />
          <Route path="/rules" element={<Rules />} />
          <Route path="/rules/new" element={<RuleEditor />} />
          <Route path="/rules/:name" element={<RuleEditor />} />
          <Route path="/channels" element={<Channels />} />
          <Route path="/silences" element={<Silences />} />
          <Route path="/deliveries" element={<Deliveries />} />
          <Route path="/slos" element={<Slos />} />
          <Route path="/keys" element={auth.can("admin") ? <Keys /> : <Navigate to="/" replace />} />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </Suspense>
    );
  return <Layout>{body}</Layout>;
}

function NotFound() {
  return (
    <section>
      <h1>Not found</h1>
      <p>No page at this address.</p>
    </section>
  );
}
