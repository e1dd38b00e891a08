"""The ingest / query / configuration API application."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from pydantic import SecretStr

from nazar_common.auth import hash_secret, split_key
from nazar_common.db.backends import Retention, backend_for
from nazar_common.db.migrate import migrate
from nazar_common.db.pool import create_pool
from nazar_common.messaging.topology import INGEST_DEFERRED
from nazar_common.runtime.worker import Runtime
from nazar_common.telemetry import setup_logging, setup_tracing
from nazar_ingest import openapi, problems
from nazar_ingest.background import (
    HostTracker,
    Maintenance,
    deferred_handler,
    outbox_relay,
)
from nazar_ingest.budget import SeriesBudget
from nazar_ingest.deps import AppState
from nazar_ingest.edge import EdgeMiddleware
from nazar_ingest.observability import MetricsMiddleware
from nazar_ingest.pipeline import Accepter
from nazar_ingest.routes import (
    alerts,
    auth,
    cardinality,
    config,
    events,
    forecast,
    health,
    ingest,
    keys,
    notifications,
    overview,
    protocols,
    query,
    reports,
    slos,
    web,
)
from nazar_ingest.security import KeyStore
from nazar_ingest.settings import IngestSettings

log = logging.getLogger(__name__)

SERVICE = "nazar-ingest"


def dashboard_dir(settings: IngestSettings) -> Path:
    """The built web app: the configured folder, or ``dashboard/dist`` of the
    source checkout (``scripts/ensure-dashboard.sh`` builds it there)."""
    if settings.dashboard_dir:
        return Path(settings.dashboard_dir)
    return Path(__file__).resolve().parents[3] / "dashboard" / "dist"


def retention_of(settings: IngestSettings) -> Retention:
    return Retention(settings.retention_raw, settings.retention_1m, settings.retention_1h)


#: Keys created at start-up from settings (the Helm chart generates them):
#: (setting, name, scope, condition). The bootstrap admin key only while no
#: admin key is active; the others unless their id is known, so a revoked key
#: stays revoked. The operator needs the rules scope under a key of its own
#: that can be revoked alone; the agent DaemonSet writes samples only.
_BOOTSTRAP_KEYS = (
    ("bootstrap_admin_key", "bootstrap", "admin", "WHERE NOT EXISTS (SELECT 1 FROM api_keys "
     "WHERE 'admin' = ANY(scopes) AND revoked_at IS NULL)"),
    ("bootstrap_operator_key", "operator", "rules", ""),
    ("bootstrap_agent_key", "agent", "ingest", ""),
)


async def _bootstrap_keys(state: AppState) -> None:
    for setting, name, scope, condition in _BOOTSTRAP_KEYS:
        secret: SecretStr = getattr(state.settings, setting)
        parts = split_key(secret.get_secret_value())
        if parts is None:
            continue
        await state.pool.execute(
            "INSERT INTO api_keys (key_id, secret_hash, name, scopes) "
            f"SELECT $1, $2, $3, ARRAY[$4] {condition} ON CONFLICT DO NOTHING",
            parts[0],
            hash_secret(parts[1]),
            name,
            scope,
        )


async def _storage_up(state: AppState, runtime: Runtime) -> None:
    """Migrate and start storage work; retried until the database answers."""
    settings = state.settings

    async def _migrate() -> tuple[str, int]:
        async with state.pool.acquire() as conn:
            name, count = await migrate(conn, settings.storage_backend)
            backend = backend_for(name, settings.accept_past)
            await backend.configure(conn, retention_of(settings))
        await _bootstrap_keys(state)
        state.backend = backend
        return name, count

    backend_name, applied = await runtime.retry_database(_migrate)
    log.info("storage ready", extra={"backend": backend_name, "migrations_applied": applied})
    assert state.backend is not None
    state.accepter.backend = state.backend
    maintenance = Maintenance(
        state.pool,
        state.backend,
        retention_of(settings),
        settings.maintenance_interval,
        settings.accept_past,
        settings.accept_future,
        settings.events_retention,
        on_series_count=state.accepter.budget.counted if settings.series_limit else None,
    )
    state.extras["maintenance"] = maintenance
    state.extras["relay"].start(runtime.tasks)
    runtime.every("maintenance", settings.maintenance_interval, maintenance.run_once,
                  run_first=True)
    runtime.every("hosts", state.extras["hosts"].interval, state.extras["hosts"].flush)


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Each request allocates thousands of short-lived objects while the
        # caches (series, label sets) hold long-lived ones: with the default
        # thresholds the collector runs a thousand times a minute under load.
        gc.set_threshold(50_000, 20, 100)
        setup_logging(settings, SERVICE)
        setup_tracing(settings, SERVICE)
        pool = await create_pool(settings, SERVICE, min_size=0)
        runtime = Runtime("ingest", settings)
        runtime.pool = pool
        broker = runtime.broker
        state = AppState(
            settings=settings,
            pool=pool,
            broker=broker,
            keys=KeyStore(pool, timeout=settings.dependency_timeout),
            runtime=runtime,
        )
        hosts = HostTracker(pool)
        relay = outbox_relay(pool, broker, settings.outbox_batch, settings.analyzer_partitions)
        state.extras.update(hosts=hosts, relay=relay)
        # Group commits get connections of their own, returned to this pool
        # without a session reset (a round trip per commit otherwise).
        writer_pool = await create_pool(
            settings,
            SERVICE,
            min_size=0,
            max_size=settings.commit_concurrency,
            reset_on_release=False,
        )
        # New series are created on connections of their own too: a burst of
        # new series (a label explosion) never takes the API's connections.
        series_pool = await create_pool(settings, SERVICE, min_size=0, max_size=2)
        state.accepter = Accepter(
            writer_pool,
            broker,
            None,
            use_copy=settings.insert_mode == "copy",
            max_samples=settings.commit_max_samples,
            concurrency=settings.commit_concurrency,
            overlap_samples=settings.commit_overlap_samples,
            dependency_timeout=settings.dependency_timeout,
            on_commit=relay.wake,
            on_hosts=hosts.note,
            series_pool=series_pool,
            budget=SeriesBudget(settings.series_limit_per_host, settings.series_limit),
            partitions=settings.analyzer_partitions,
        )
        app.state.nazar = state
        runtime.consume(INGEST_DEFERRED, deferred_handler(state.accepter), prefetch=4)
        runtime.start_broker()
        runtime.spawn("storage-up", lambda: _storage_up(state, runtime))

        async def drain() -> None:
            await state.accepter.drain()
            with contextlib.suppress(Exception):
                await hosts.flush()

        try:
            yield
        finally:
            await runtime.shutdown(drain=drain)
            await writer_pool.close()
            await series_pool.close()

    app = FastAPI(
        # /docs and /redoc are served from a bundled copy of their assets
        # (nazar_ingest.routes.web), never from a CDN.
        docs_url=None,
        redoc_url=None,
        title="Nazar API",
        version="1",
        description="Ingest, query and configuration API of Nazar.",
        lifespan=lifespan,
        # Server spans only: request metrics are Prometheus (MetricsMiddleware)
        # and logs go through the logging module.
        telemetry={"metrics": False, "logs": False},
    )
    problems.install(app)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(EdgeMiddleware, body_timeout=settings.body_timeout)  # outermost
    app.router.routes.append(ingest.route)
    for module in (
        health, protocols, query, overview, cardinality, config, keys, auth, alerts,
        notifications, events, forecast, slos, reports,
    ):
        app.include_router(module.router)
    openapi.install(app, ingest.openapi_paths())
    # Last: its catch-all route serves the web app for every other path.
    web.install(app, dashboard_dir(settings))
    return app
