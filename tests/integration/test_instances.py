"""The private PostgreSQL / RabbitMQ instances of ``tests.support.instances`` work.

Each test starts its own server, talks to it with the real client library, stops it (the
port then refuses connections), starts it again and finds its data still there.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

import aio_pika  # noqa: E402
import aio_pika.exceptions  # noqa: E402
import asyncpg  # noqa: E402

from tests.support.instances import (  # noqa: E402
    InstanceUnavailableError,
    PgStopMode,
    PrivatePostgres,
    PrivateRabbitMQ,
    RabbitStopMode,
    find_pg_bindir,
    find_rabbitmq_sbin,
    port_accepts,
)


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def _pid_alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return state[state.rfind(")") + 2] not in "ZX"


@pytest.fixture
def pg() -> Iterator[PrivatePostgres]:
    try:
        instance = PrivatePostgres()
    except InstanceUnavailableError as exc:
        pytest.skip(str(exc))
    with instance:
        instance.start()
        yield instance


@pytest.fixture
def rmq() -> Iterator[PrivateRabbitMQ]:
    try:
        instance = PrivateRabbitMQ()
    except InstanceUnavailableError as exc:
        pytest.skip(str(exc))
    with instance:
        instance.start()
        yield instance


# --------------------------------------------------------------------------- PostgreSQL


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgres_stop_start_keeps_data(pg: PrivatePostgres, mode: PgStopMode) -> None:
    assert pg.port != 5432
    pg.create_database("failover")
    pg.create_database("failover")  # idempotent

    conn = await asyncpg.connect(pg.dsn("failover"))
    try:
        await conn.execute("CREATE TABLE samples (id int PRIMARY KEY, value double precision)")
        await conn.executemany(
            "INSERT INTO samples VALUES ($1, $2)", [(i, i * 1.5) for i in range(100)]
        )
        survivor = await asyncpg.connect(pg.dsn("failover"))
        await pg.astop(mode)
    finally:
        await conn.close(timeout=2)

    assert not pg.is_running
    assert _refused(pg.port)
    with pytest.raises(OSError):
        await asyncpg.connect(pg.dsn("failover"), timeout=5)
    # A connection that was open when the server went away is dead.
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
        await survivor.fetchval("SELECT 1")
    survivor.terminate()

    await pg.astart()
    assert pg.is_running
    conn = await asyncpg.connect(pg.dsn("failover"))
    try:
        assert await conn.fetchval("SELECT count(*) FROM samples") == 100
        assert await conn.fetchval("SELECT value FROM samples WHERE id = 42") == 63.0
    finally:
        await conn.close()


def test_postgres_cleanup_leaves_nothing() -> None:
    try:
        pg = PrivatePostgres()
    except InstanceUnavailableError as exc:
        pytest.skip(str(exc))
    with pg:
        pg.start()
        pid = pg.pid
        assert pid is not None and _pid_alive(pid)
        assert port_accepts(pg.port)
        base = pg.base_dir
    assert not base.exists()
    assert not _pid_alive(pid)
    assert _processes_mentioning(str(base)) == []
    assert not port_accepts(pg.port)
    pg.cleanup()  # idempotent


# --------------------------------------------------------------------------- RabbitMQ


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["graceful", "kill"])
async def test_rabbitmq_stop_start_keeps_durable_messages(
    rmq: PrivateRabbitMQ, mode: RabbitStopMode
) -> None:
    assert rmq.port != 5672
    assert rmq.node in rmq.rabbitmqctl("status").stdout

    conn = await aio_pika.connect(rmq.url)
    try:
        channel = await conn.channel()  # publisher confirms are on by default
        queue = await channel.declare_queue("failover.durable", durable=True)
        for i in range(3):
            await channel.default_exchange.publish(
                aio_pika.Message(
                    body=f"sample-{i}".encode(),
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=queue.name,
            )
    finally:
        await conn.close()

    await rmq.astop(mode)
    assert not rmq.is_running
    assert _refused(rmq.port)
    with pytest.raises(aio_pika.exceptions.AMQPConnectionError):
        await aio_pika.connect(rmq.url, timeout=5)

    await rmq.astart()
    assert rmq.is_running
    conn = await aio_pika.connect(rmq.url)
    try:
        channel = await conn.channel()
        queue = await channel.declare_queue("failover.durable", passive=True)
        bodies = []
        for _ in range(3):
            message = await queue.get(timeout=5)
            bodies.append(message.body.decode())
            await message.ack()
        assert bodies == ["sample-0", "sample-1", "sample-2"]
    finally:
        await conn.close()


@pytest.mark.slow
def test_rabbitmq_cleanup_leaves_nothing() -> None:
    try:
        rmq = PrivateRabbitMQ()
    except InstanceUnavailableError as exc:
        pytest.skip(str(exc))
    with rmq:
        rmq.start()
        base = rmq.base_dir
        assert _processes_mentioning(str(base)) != []  # the VM runs with -home <base>
        ports = (rmq.port, rmq.dist_port, rmq.epmd_port)
        assert all(port_accepts(port) for port in ports)
    assert not base.exists()
    assert _processes_mentioning(str(base)) == []
    assert not any(port_accepts(port) for port in ports)
    rmq.cleanup()  # idempotent


# --------------------------------------------------------------------------- watchdog

_ORPHANING_SCRIPT = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from tests.support.instances import PrivatePostgres, PrivateRabbitMQ
pg = PrivatePostgres()
pg.start()
rmq = PrivateRabbitMQ()
rmq.start()
print(pg.pid, pg.port, pg.base_dir, rmq.port, rmq.epmd_port, rmq.base_dir, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no finalizers
"""


@pytest.mark.slow
def test_watchdog_cleans_up_after_a_killed_test_process() -> None:
    try:
        find_pg_bindir()
        find_rabbitmq_sbin()
    except InstanceUnavailableError as exc:
        pytest.skip(str(exc))
    result = subprocess.run(
        [sys.executable, "-c", _ORPHANING_SCRIPT, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    pg_pid, pg_port, pg_dir, rmq_port, epmd_port, rmq_dir = result.stdout.split()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (Path(pg_dir).exists() or Path(rmq_dir).exists()):
        time.sleep(0.2)
    assert not Path(pg_dir).exists() and not Path(rmq_dir).exists()
    assert not _pid_alive(int(pg_pid))
    assert _processes_mentioning(rmq_dir) == []
    assert not any(port_accepts(int(p)) for p in (pg_port, rmq_port, epmd_port))
