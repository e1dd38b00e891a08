"""Issue: with TimescaleDB installed on the server but not in
``shared_preload_libraries``, ``auto`` ran ``CREATE EXTENSION``, the server
answered ``FATAL: extension "timescaledb" must be preloaded``, the session
ended, and the migrations failed.

The choice is a pure function of what the server says (tested on its own);
against real PostgreSQL: the plain path with one log line saying why, on a
server without TimescaleDB and on one where it is installed but not
preloaded. The latter is a private instance whose installation carries a
stand-in ``timescaledb`` extension that, like the real one when it is not
preloaded, ends the session that creates it: selection must never try."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from nazar_common.db import migrate as migrate_module
from nazar_common.db.migrate import (
    TimescaleFacts,
    migrate,
    preload_lists_timescaledb,
    select_backend,
    timescale_facts,
)
from nazar_common.errors import PermanentError
from tests.support.instances import InstanceUnavailableError, PrivatePostgres

NOT_INSTALLED = TimescaleFacts(available=False, created=False, preloaded=False)
NOT_PRELOADED = TimescaleFacts(available=True, created=False, preloaded=False)
READY = TimescaleFacts(available=True, created=False, preloaded=True)
CREATED = TimescaleFacts(available=True, created=True, preloaded=True)


@pytest.mark.parametrize(
    ("requested", "facts", "backend", "why"),
    [
        ("auto", NOT_INSTALLED, "postgres", "not installed"),
        ("auto", NOT_PRELOADED, "postgres", "not in shared_preload_libraries"),
        ("auto", READY, "timescaledb", "installed and preloaded"),
        ("auto", CREATED, "timescaledb", "exists in this database"),
        # Created by an operator on a server that loads it another way.
        ("auto", TimescaleFacts(True, True, False), "timescaledb", "exists"),
        ("timescaledb", READY, "timescaledb", "preloaded"),
        ("postgres", READY, "postgres", "NAZAR_STORAGE_BACKEND=postgres"),
        ("postgres", CREATED, "postgres", "NAZAR_STORAGE_BACKEND=postgres"),
    ],
)
def test_selection(requested: str, facts: TimescaleFacts, backend: str, why: str) -> None:
    chosen, reason = select_backend(requested, facts)
    assert chosen == backend
    assert why in reason


@pytest.mark.parametrize(("facts", "why"), [(NOT_INSTALLED, "not installed"),
                                            (NOT_PRELOADED, "shared_preload_libraries")])
def test_timescaledb_requested_but_unusable_says_why(facts: TimescaleFacts, why: str) -> None:
    with pytest.raises(PermanentError, match=why):
        select_backend("timescaledb", facts)


@pytest.mark.parametrize(
    ("setting", "listed"),
    [
        ("", False),
        ("pg_stat_statements", False),
        ("timescaledb", True),
        ("pg_stat_statements, timescaledb", True),
        ("'$libdir/timescaledb'", True),
        ('"timescaledb"', True),
        ("TimescaleDB.so", True),
        ("timescaledb_toolkit", False),
        ("timescaledb-2.14.2", False),
    ],
)
def test_shared_preload_libraries_parsing(setting: str, listed: bool) -> None:
    assert preload_lists_timescaledb(setting) is listed


async def test_plain_postgres_without_timescaledb(
    fresh_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    conn = await asyncpg.connect(fresh_database_url)
    try:
        facts = await timescale_facts(conn)
        if facts.available:
            pytest.skip("this server has TimescaleDB installed")
        with pytest.raises(PermanentError, match="not installed"):
            await migrate(conn, "timescaledb")
        assert await conn.fetchval("SELECT 1") == 1
        with caplog.at_level(logging.INFO, logger=migrate_module.__name__):
            assert (await migrate(conn, "auto"))[0] == "postgres"
        lines = [r.getMessage() for r in caplog.records if "storage backend" in r.getMessage()]
        assert lines == ["storage backend: postgres (the timescaledb extension is not "
                         "installed on the server)"]
        # Recorded: a restart neither asks again nor logs it again.
        caplog.clear()
        with caplog.at_level(logging.INFO, logger=migrate_module.__name__):
            assert await migrate(conn, "auto") == ("postgres", 0)
        assert not [r for r in caplog.records if "storage backend" in r.getMessage()]
    finally:
        await conn.close()


# ------------------------------------------- installed, not preloaded (a private server)

FAKE_CONTROL = """\
comment = 'stand-in: ends the session that creates it, as TimescaleDB does when not preloaded'
default_version = '2.99.0'
relocatable = false
superuser = true
"""
FAKE_SCRIPT = "SELECT pg_terminate_backend(pg_backend_pid());\n"


def _relocated_installation(root: Path, bindir: Path) -> Path:
    """A copy of the PostgreSQL installation under ``root`` (binary copied,
    everything else linked) whose extension directory adds the stand-in;
    returns its bin directory. PostgreSQL finds its share directory relative
    to the running executable."""
    real_bin = bindir.resolve()
    prefix = Path("/usr")
    if not real_bin.is_relative_to(prefix):
        raise InstanceUnavailableError(f"unexpected layout: {real_bin}")
    major = real_bin.parent.name
    share = prefix / "share" / "postgresql" / major
    if not (share / "extension").is_dir():
        raise InstanceUnavailableError(f"no share directory at {share}")
    new_bin = root / real_bin.relative_to(prefix)
    new_bin.mkdir(parents=True)
    for tool in real_bin.iterdir():
        if tool.name in ("postgres", "initdb"):
            shutil.copy2(tool, new_bin / tool.name)
        else:
            (new_bin / tool.name).symlink_to(tool)
    (new_bin.parent / "lib").symlink_to(real_bin.parent / "lib")
    new_share = root / "share" / "postgresql" / major
    new_share.mkdir(parents=True)
    for entry in share.iterdir():
        if entry.name != "extension":
            (new_share / entry.name).symlink_to(entry)
    extension = new_share / "extension"
    extension.mkdir()
    for entry in (share / "extension").iterdir():
        (extension / entry.name).symlink_to(entry)
    (extension / "timescaledb.control").write_text(FAKE_CONTROL)
    (extension / "timescaledb--2.99.0.sql").write_text(FAKE_SCRIPT)
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755)
    return new_bin


@pytest.fixture(scope="module")
def installed_not_preloaded() -> Iterator[str]:
    # Readable by the user the server runs as (postgres, when tests run as root).
    root = Path(tempfile.mkdtemp(prefix="nazar-pg-install-"))
    try:
        try:
            pg = PrivatePostgres()
        except InstanceUnavailableError as exc:
            pytest.skip(str(exc))
        with pg:
            try:
                pg.bindir = _relocated_installation(root, pg.bindir)
            except InstanceUnavailableError as exc:
                pytest.skip(str(exc))
            pg.start()
            pg.create_database("nazar")
            yield pg.dsn("nazar")
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def test_installed_but_not_preloaded_takes_the_plain_path_and_keeps_the_session(
    installed_not_preloaded: str, caplog: pytest.LogCaptureFixture
) -> None:
    conn = await asyncpg.connect(installed_not_preloaded)
    try:
        facts = await timescale_facts(conn)
        assert facts == NOT_PRELOADED
        with pytest.raises(PermanentError, match="shared_preload_libraries"):
            await migrate(conn, "timescaledb")
        with caplog.at_level(logging.INFO, logger=migrate_module.__name__):
            backend, applied = await migrate(conn, "auto")
        assert backend == "postgres" and applied > 0
        # The same session, still alive: selection did not end it.
        assert await conn.fetchval("SELECT 1") == 1
        assert not await conn.fetchval(
            "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")
        lines = [r.getMessage() for r in caplog.records if "storage backend" in r.getMessage()]
        assert len(lines) == 1 and "not in shared_preload_libraries" in lines[0], lines
    finally:
        await conn.close()
    # The stand-in does what the real extension does when it is not preloaded.
    other = await asyncpg.connect(installed_not_preloaded)
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
        await other.execute("CREATE EXTENSION timescaledb")
    assert other.is_closed() or not await _alive(other)


async def _alive(conn: asyncpg.Connection) -> bool:
    try:
        await conn.fetchval("SELECT 1")
    except Exception:
        return False
    return True
