"""Versioned SQL migrations.

Files in ``migrations/`` are named ``NNNN_name.sql`` (for every backend) or
``NNNN_name.<backend>.sql`` (``postgres`` or ``timescaledb``: one variant per
backend for the same version). Each migration runs in its own transaction;
a session-level advisory lock makes concurrent starters (replicas) wait for
each other instead of racing. The backend is chosen once, on the first
migration, and recorded in ``nazar_meta``: a database never changes path.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import asyncpg

from nazar_common.errors import PermanentError

log = logging.getLogger(__name__)

Backend = Literal["postgres", "timescaledb"]
BACKENDS: tuple[Backend, ...] = ("postgres", "timescaledb")

#: Arbitrary constant: pg_advisory_lock key shared by every Nazar migrator.
MIGRATION_LOCK_KEY = 0x4E415A4152  # "NAZAR"

_FILE_RE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+?)(?:\.(?P<backend>[a-z]+))?\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(backend: Backend) -> list[Migration]:
    """The ordered migrations for ``backend``."""
    by_version: dict[int, Migration] = {}
    for entry in resources.files("nazar_common.db.migrations").iterdir():
        match = _FILE_RE.match(entry.name)
        if not match:
            continue
        variant = match["backend"]
        if variant is not None and variant not in BACKENDS:
            raise PermanentError(f"migration {entry.name}: unknown backend {variant!r}")
        if variant is not None and variant != backend:
            continue
        version = int(match["version"])
        if version in by_version:
            raise PermanentError(f"two migrations with version {version:04d}")
        by_version[version] = Migration(version, match["name"], entry.read_text())
    return [by_version[v] for v in sorted(by_version)]


@dataclass(frozen=True)
class TimescaleFacts:
    """What the server says about TimescaleDB, read without side effects."""

    #: Installed on the server (``pg_available_extensions``).
    available: bool
    #: Already created in this database (``pg_extension``).
    created: bool
    #: Its loader is loaded into every session: listed in
    #: ``shared_preload_libraries`` (or its loader's setting exists).
    preloaded: bool


def preload_lists_timescaledb(shared_preload_libraries: str) -> bool:
    """Whether ``shared_preload_libraries`` names the TimescaleDB loader
    (``timescaledb``, ``'$libdir/timescaledb'``, ``timescaledb.so``; any case)."""
    for entry in shared_preload_libraries.split(","):
        name = entry.strip().strip("\"'").strip()
        name = name.rsplit("/", 1)[-1].lower()
        name = name.removesuffix(".so").removesuffix(".dll").removesuffix(".dylib")
        if name == "timescaledb":
            return True
    return False


def select_backend(requested: str, facts: TimescaleFacts) -> tuple[Backend, str]:
    """The storage backend for a new database and why, or ``PermanentError``.

    TimescaleDB only when it is already created, or installed *and*
    preloaded: ``CREATE EXTENSION`` of an installed but not preloaded
    TimescaleDB ends the session (``FATAL: extension "timescaledb" must be
    preloaded``), so it is never tried then."""
    if requested == "postgres":
        return "postgres", "NAZAR_STORAGE_BACKEND=postgres"
    if facts.created:
        return "timescaledb", "the timescaledb extension exists in this database"
    if facts.available and facts.preloaded:
        return "timescaledb", "the timescaledb extension is installed and preloaded"
    if not facts.available:
        why = "the timescaledb extension is not installed on the server"
    else:
        why = ("the timescaledb extension is installed but not in shared_preload_libraries "
               "(add it there and restart PostgreSQL to use it)")
    if requested == "timescaledb":
        raise PermanentError(f"NAZAR_STORAGE_BACKEND=timescaledb, but {why}")
    return "postgres", why


async def timescale_facts(conn: asyncpg.Connection) -> TimescaleFacts:
    row = await conn.fetchrow(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') "
        "AS available, EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') "
        "AS created, current_setting('shared_preload_libraries', true) AS preload, "
        "current_setting('timescaledb.disable_load', true) IS NOT NULL AS loader"
    )
    return TimescaleFacts(
        available=bool(row["available"]),
        created=bool(row["created"]),
        preloaded=bool(row["loader"]) or preload_lists_timescaledb(row["preload"] or ""),
    )


async def _choose_backend(conn: asyncpg.Connection, requested: str) -> Backend:
    recorded = await conn.fetchval("SELECT value FROM nazar_meta WHERE key = 'storage_backend'")
    if recorded is not None:
        if requested not in ("auto", recorded):
            raise PermanentError(
                f"this database was created with the {recorded} storage backend; "
                f"NAZAR_STORAGE_BACKEND={requested} cannot change it"
            )
        return recorded  # type: ignore[no-any-return]
    backend, why = select_backend(requested, await timescale_facts(conn))
    if backend == "timescaledb":
        try:
            async with conn.transaction():
                await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        except asyncpg.PostgresError as exc:
            # A non-fatal refusal (privileges, a version mismatch): the session lives on.
            if requested == "timescaledb":
                raise PermanentError(f"cannot enable timescaledb: {exc}") from exc
            backend, why = "postgres", f"CREATE EXTENSION timescaledb failed ({exc})"
    log.info("storage backend: %s (%s)", backend, why,
             extra={"storage_backend": backend, "reason": why})
    return backend


async def current_backend(conn: asyncpg.Connection) -> Backend | None:
    exists = await conn.fetchval("SELECT to_regclass('nazar_meta') IS NOT NULL")
    if not exists:
        return None
    value = await conn.fetchval("SELECT value FROM nazar_meta WHERE key = 'storage_backend'")
    return value  # type: ignore[no-any-return]


async def migrate(conn: asyncpg.Connection, requested_backend: str = "auto") -> tuple[Backend, int]:
    """Apply pending migrations. Returns the backend and how many were applied."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS nazar_meta (key text PRIMARY KEY, value text NOT NULL);
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            """
        )
        backend = await _choose_backend(conn, requested_backend)
        await conn.execute(
            "INSERT INTO nazar_meta (key, value) VALUES ('storage_backend', $1) "
            "ON CONFLICT (key) DO NOTHING",
            backend,
        )
        applied = {
            r["version"]: r["checksum"]
            for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        count = 0
        for migration in load_migrations(backend):
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    log.warning(
                        "migration %04d_%s changed after it was applied",
                        migration.version,
                        migration.name,
                    )
                continue
            log.info("applying migration %04d_%s", migration.version, migration.name)
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            count += 1
        return backend, count
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
