"""Shared fixtures: a private database and RabbitMQ vhost per test session,
and a real ingest server on a free port.

Tests use the real PostgreSQL and RabbitMQ servers (``NAZAR_TEST_PG_URL``,
default ``postgresql://postgres@127.0.0.1:5432/postgres``, and
``NAZAR_TEST_AMQP_URL``, default ``amqp://guest:guest@127.0.0.1:5672/``).
Each session creates its own database and vhost, so parallel runs and other
users of the servers are not disturbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
import uvicorn

PG_ADMIN_URL = os.environ.get("NAZAR_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("NAZAR_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_db(url: str, dbname: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + dbname))


def _with_vhost(url: str, vhost: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(vhost, safe="")))


async def create_database(name: str) -> str:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _with_db(PG_ADMIN_URL, name)


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def create_vhost(name: str) -> str:
    _rabbitmqctl("add_vhost", name)
    user = urllib.parse.urlsplit(AMQP_URL).username or "guest"
    _rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
    return _with_vhost(AMQP_URL, name)


def delete_vhost(name: str) -> None:
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        _rabbitmqctl("delete_vhost", name)


@contextlib.asynccontextmanager
async def private_database(token: str | None = None) -> AsyncIterator[str]:
    """A fresh, empty database (named after ``token``), dropped afterwards."""
    name = f"nazar_test_{token or secrets.token_hex(4)}"
    url = await create_database(name)
    try:
        yield url
    finally:
        await drop_database(name)


@contextlib.contextmanager
def private_vhost(token: str | None = None) -> Iterator[str]:
    """A fresh RabbitMQ vhost (named after ``token``), deleted afterwards."""
    name = f"nazar-test-{token or secrets.token_hex(4)}"
    url = create_vhost(name)
    try:
        yield url
    finally:
        delete_vhost(name)


@pytest.fixture(scope="session")
def session_token() -> str:
    return secrets.token_hex(4)


@pytest.fixture(scope="session")
async def database_url(session_token: str) -> AsyncIterator[str]:
    """A fresh, empty database for this test session."""
    async with private_database(session_token) as url:
        yield url


@pytest.fixture(scope="session")
def amqp_url(session_token: str) -> Iterator[str]:
    """A fresh RabbitMQ vhost for this test session."""
    with private_vhost(session_token) as url:
        yield url


@pytest.fixture
async def fresh_database_url() -> AsyncIterator[str]:
    """A fresh database for one test (for tests that need an empty schema)."""
    async with private_database() as url:
        yield url


@pytest.fixture
def fresh_amqp_url() -> Iterator[str]:
    """A fresh vhost for one test."""
    with private_vhost() as url:
        yield url


class ServerThread:
    """Runs an ASGI app with uvicorn in a thread of this process, on a free port."""

    def __init__(self, app: object, port: int | None = None) -> None:
        self.port = port or free_port()
        self.config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@dataclass
class IngestServer:
    url: str
    database_url: str
    amqp_url: str
    admin_key: str
    ingest_key: str
    read_key: str
    thread: ServerThread

    def client(self, key: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)


async def create_key(database_url: str, scope: str) -> str:
    from nazar_common.auth import generate_key

    new = generate_key()
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO api_keys (key_id, secret_hash, name, scopes) VALUES ($1, $2, $3, $4)",
            new.key_id,
            new.secret_hash,
            f"test-{scope}",
            [scope],
        )
    finally:
        await conn.close()
    return new.plaintext


async def wait_ready(url: str, timeout: float = 30.0) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        deadline = time.monotonic() + timeout
        while True:
            r = await client.get("/readyz")
            if r.status_code == 200 and r.json()["status"] == "ok":
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"ingest not ready: {r.text}")
            await asyncio.sleep(0.05)


async def start_ingest(database_url: str, amqp_url: str, **overrides: object) -> IngestServer:
    """Start a real ingest server (in a thread) against the given database and vhost."""
    from nazar_common.db.migrate import migrate
    from nazar_ingest.app import create_app
    from nazar_ingest.settings import IngestSettings

    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, "postgres")
    finally:
        await conn.close()
    settings = IngestSettings(
        database_url=database_url,
        amqp_url=amqp_url,
        **{"log_format": "text", "log_level": "WARNING", **overrides},  # type: ignore[arg-type]
    )
    thread = ServerThread(create_app(settings))
    thread.start()
    server = IngestServer(
        url=thread.url,
        database_url=database_url,
        amqp_url=amqp_url,
        admin_key=await create_key(database_url, "admin"),
        ingest_key=await create_key(database_url, "ingest"),
        read_key=await create_key(database_url, "read"),
        thread=thread,
    )
    await wait_ready(server.url)
    return server


@pytest.fixture(scope="session")
async def ingest_server(database_url: str, amqp_url: str) -> AsyncIterator[IngestServer]:
    """One ingest server shared by the session (database and vhost of its own)."""
    server = await start_ingest(database_url, amqp_url)
    yield server
    server.thread.stop()
