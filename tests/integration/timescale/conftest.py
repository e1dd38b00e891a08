"""Fixtures of the TimescaleDB storage tests: a stand-in TimescaleDB server.

No package registry offers TimescaleDB for the PostgreSQL we run, so the
tests talk to the TimescaleDB-enabled PGlite build (WASM PostgreSQL 17 with
TimescaleDB 2.23) served over the wire protocol on 127.0.0.1 by
``tests/support/pglite/server.mjs``. Its ``node_modules`` are installed on
first use (``npm install``); only a machine without node/npm skips.

PGlite is one PostgreSQL session shared by all clients, so the whole test
session uses ONE asyncpg connection (no statement cache). Each test gets its
own schema (``search_path = <schema>, public``) migrated from scratch, so
tests do not see each other's tables or policies; the timescaledb extension
itself lives in ``public``, created by the first migration of the session.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

ROOT = Path(__file__).resolve().parents[3]

from nazar_common.db.migrate import Backend, migrate  # noqa: E402

PGLITE_DIR = ROOT / "tests" / "support" / "pglite"
NPM_INSTALL_TIMEOUT = 600.0
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class PGliteServer:
    host: str
    port: int
    process: subprocess.Popen[bytes]


def _npm_install() -> None:
    if (PGLITE_DIR / "node_modules" / "@electric-sql" / "pglite-socket").is_dir():
        return
    npm = shutil.which("npm")
    assert npm is not None
    result = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund"],
        cwd=PGLITE_DIR,
        capture_output=True,
        timeout=NPM_INSTALL_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"npm install in {PGLITE_DIR} failed ({result.returncode}):\n"
            f"{result.stdout.decode(errors='replace')}\n{result.stderr.decode(errors='replace')}"
        )


@pytest.fixture(scope="session")
def pglite_server() -> Iterator[PGliteServer]:
    """The stand-in server, on a free port picked by the OS (``--port 0``)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run the PGlite TimescaleDB stand-in server")
    _npm_install()
    process = subprocess.Popen(
        # --stdin-lifeline: the server exits when this process's end of the
        # pipe closes, even if pytest is killed before the teardown runs.
        [node, "server.mjs", "--host", "127.0.0.1", "--port", "0", "--stdin-lifeline"],
        cwd=PGLITE_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    assert process.stdout is not None and process.stderr is not None
    first_line: list[bytes] = []
    reader = threading.Thread(
        target=lambda: first_line.append(process.stdout.readline()),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    reader.join(START_TIMEOUT)
    line = first_line[0].decode() if first_line else ""
    match = re.fullmatch(r"LISTENING (\S+) (\d+)\s*", line)
    if match is None:
        process.kill()
        _, err = process.communicate(timeout=10)
        pytest.fail(
            f"PGlite server did not start within {START_TIMEOUT:.0f}s "
            f"(stdout {line!r}, exit {process.returncode}):\n{err.decode(errors='replace')}"
        )
    # Keep draining stderr so a chatty server never blocks on a full pipe.
    threading.Thread(target=process.stderr.read, daemon=True).start()
    try:
        yield PGliteServer(match[1], int(match[2]), process)
    finally:
        assert process.stdin is not None
        process.stdin.close()  # the lifeline: the server stops on EOF
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
async def conn(pglite_server: PGliteServer) -> AsyncIterator[asyncpg.Connection]:
    """The session's only connection (PGlite has a single session)."""
    connection = await asyncpg.connect(
        host=pglite_server.host,
        port=pglite_server.port,
        user="postgres",
        database="postgres",
        ssl=False,
        statement_cache_size=0,
        timeout=30,
    )
    try:
        yield connection
    finally:
        await connection.close(timeout=10)


@pytest.fixture(scope="session")
async def first_migration(conn: asyncpg.Connection) -> tuple[Backend, int]:
    """Migrates ``public`` with the backend left to ``auto`` and returns what
    ``migrate`` did. PGlite loads TimescaleDB without
    ``shared_preload_libraries``, so ``auto`` would not create the extension
    itself (see ``select_backend``); it is created first (in ``public``, for
    the whole session), as an operator does, and ``auto`` then picks it."""
    await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    return await migrate(conn, "auto")


@pytest.fixture
async def db(
    conn: asyncpg.Connection,
    first_migration: tuple[Backend, int],
    request: pytest.FixtureRequest,
) -> AsyncIterator[asyncpg.Connection]:
    """``conn`` with a fresh schema of the test's own, migrated."""
    schema = "t_" + re.sub(r"\W", "_", request.node.name).lower()[:50]
    await conn.execute(f"CREATE SCHEMA {schema}")
    await conn.execute(f"SET search_path = {schema}, public")
    try:
        backend, _ = await migrate(conn, "auto")
        assert backend == "timescaledb"
        yield conn
    finally:
        if conn.is_in_transaction():  # pragma: no cover - a test left one open
            await conn.execute("ROLLBACK")
        await conn.execute("SET search_path = public")
