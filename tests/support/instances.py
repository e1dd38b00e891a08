"""Private PostgreSQL and RabbitMQ instances for tests that stop and start servers.

Failover tests must be able to kill the database or the broker without disturbing the
shared development instances (and whatever else uses them).  The two classes here each
run a throw-away server in a temporary directory, on free ports of 127.0.0.1:

* :class:`PrivatePostgres` -- ``initdb`` + ``postgres`` (trust auth, superuser ``postgres``);
* :class:`PrivateRabbitMQ` -- a separate RabbitMQ node with its own node name, ports,
  data directory, Erlang cookie and ``epmd``.

Both are context managers; both are also stopped and removed at interpreter exit.  Servers
are children of the test process (never daemonised), so nothing outlives ``cleanup()``; and
should the test process die without cleaning up (SIGKILL, SIGTERM, ``os._exit``), a small
watchdog process per instance kills its servers and deletes its directory.

The ``start``/``stop``/``restart`` methods block (seconds).  From async tests whose event loop
must keep running meanwhile (a service under test in the same loop), use the ``astart`` /
``astop`` / ``arestart`` variants, which run the blocking call in a worker thread.

Environment variables:

* ``NAZAR_PG_BINDIR`` -- directory of ``initdb``/``postgres``/``psql`` (default:
  ``pg_config --bindir``, then the newest ``/usr/lib/postgresql/*/bin``, then ``$PATH``);
* ``NAZAR_RABBITMQ_SBIN`` -- directory of the real ``rabbitmq-server``/``rabbitmqctl`` scripts
  (default: found from ``rabbitmq-server`` on ``$PATH``, skipping Debian's wrapper that
  switches to the ``rabbitmq`` user);
* ``NAZAR_TEST_TMPDIR`` -- where the temporary directories go (default: the system temp dir).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

__all__ = [
    "InstanceError",
    "InstanceUnavailableError",
    "PgStopMode",
    "PrivatePostgres",
    "PrivateRabbitMQ",
    "RabbitStopMode",
    "amqp_answers",
    "find_pg_bindir",
    "find_rabbitmq_sbin",
    "free_port",
    "free_ports",
    "port_accepts",
    "running_postgres",
    "running_rabbitmq",
]

LOOPBACK = "127.0.0.1"


class InstanceError(RuntimeError):
    """A private instance could not be set up, started or stopped."""


class InstanceUnavailableError(InstanceError):
    """The server software is not installed here (tests usually skip on this)."""


# --------------------------------------------------------------------------- utilities


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct TCP ports that were free on ``host`` a moment ago."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    return free_ports(1, host)[0]


def port_accepts(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """Whether a TCP connection to ``host:port`` is accepted right now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    alive: Callable[[], bool] | None = None,
    on_failure: Callable[[], str] | None = None,
) -> None:
    """Poll ``condition`` until true; fail early if ``alive`` turns false."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if condition():
            return
        if alive is not None and not alive():
            detail = on_failure() if on_failure else ""
            raise InstanceError(f"{what}: the process exited.{detail}")
        if time.monotonic() >= deadline:
            detail = on_failure() if on_failure else ""
            raise InstanceError(f"{what}: not done after {timeout:.0f} s.{detail}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    last = "\n".join(text.splitlines()[-lines:])
    return f"\n--- last lines of {path} ---\n{last}" if last else ""


def _clean_env(drop_prefixes: tuple[str, ...]) -> dict[str, str]:
    """The current environment without variables that would redirect the servers."""
    return {k: v for k, v in os.environ.items() if not k.startswith(drop_prefixes)}


def _make_base_dir(prefix: str) -> Path:
    parent = os.environ.get("NAZAR_TEST_TMPDIR") or None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    """Whether a live (non-zombie) process is left in process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry / "stat")
        if len(fields) < 3 or int(fields[2]) != pgid:
            continue
        if fields[0] not in ("Z", "X"):
            return True
        # A multi-threaded process (the Erlang VM) whose main thread has exited shows "Z"
        # while its other threads -- and its sockets -- are still being torn down.
        with contextlib.suppress(OSError):
            for task in (entry / "task").iterdir():
                if _stat_fields(task / "stat")[:1] not in ([], ["Z"], ["X"]):
                    return True
    return False


def _stat_fields(path: Path) -> list[str]:
    """The fields of a /proc stat file after ``pid (comm)``: state, ppid, pgrp, ..."""
    try:
        stat = path.read_text()
    except OSError:
        return []
    # comm may contain spaces and parentheses: split after the last ")".
    return stat[stat.rfind(")") + 2 :].split()


_live: set[_Instance] = set()
_live_lock = threading.Lock()


# The watchdog: a tiny process per instance that holds the read end of a pipe whose write
# end only the test process has.  It learns the process groups of the instance's servers
# ("+ PGID SIGNAL" / "- PGID" lines); when the pipe reaches EOF -- at cleanup, or because
# the test process died without running any cleanup (SIGKILL, SIGTERM, os._exit) -- it
# signals the groups still listed, SIGKILLs what is left after a few seconds, and deletes
# the instance's directory.
_WATCHDOG = """
import os, shutil, signal, sys, time
groups = {}
for line in sys.stdin:
    op, *args = line.split()
    if op == "+":
        groups[int(args[0])] = int(args[1])
    elif op == "-":
        groups.pop(int(args[0]), None)
def alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
for pgid, sig in groups.items():
    try:
        os.killpg(pgid, sig)
    except OSError:
        pass
deadline = time.monotonic() + 5
while any(alive(p) for p in groups) and time.monotonic() < deadline:
    time.sleep(0.1)
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
shutil.rmtree(sys.argv[1], ignore_errors=True)
"""


class _Instance:
    """What both kinds share: the watchdog, cleanup at exit, the context manager."""

    base_dir: Path

    def __init__(self) -> None:
        """Call once ``base_dir`` exists."""
        self._cleaned = False
        read_end, write_end = os.pipe()  # neither end is inherited by other children
        try:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(self.base_dir)],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                start_new_session=True,  # not hit by a Ctrl-C meant for the tests
            )
        finally:
            os.close(read_end)
        self._watch_pipe = os.fdopen(write_end, "w", buffering=1)
        with _live_lock:
            _live.add(self)

    def _watch(self, pgid: int, sig: signal.Signals) -> None:
        """Have the watchdog send ``sig`` to group ``pgid`` should the tests die."""
        with contextlib.suppress(OSError, ValueError):
            self._watch_pipe.write(f"+ {pgid} {int(sig)}\n")

    def _unwatch(self, pgid: int) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._watch_pipe.write(f"- {pgid}\n")

    def cleanup(self) -> None:
        raise NotImplementedError

    def _forget(self) -> None:
        """End of cleanup: release the watchdog (it exits at EOF) and deregister."""
        self._cleaned = True
        with contextlib.suppress(OSError):
            self._watch_pipe.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._watchdog.wait(15)
        with _live_lock:
            _live.discard(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


@atexit.register
def _cleanup_all() -> None:
    with _live_lock:
        instances = list(_live)
    for instance in instances:
        with contextlib.suppress(Exception):
            instance.cleanup()


# --------------------------------------------------------------------------- PostgreSQL


def find_pg_bindir() -> Path:
    """The directory holding ``initdb``, ``postgres`` and ``psql``."""
    candidates: list[Path] = []
    if env := os.environ.get("NAZAR_PG_BINDIR"):
        candidates.append(Path(env))
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", path.parent.name))

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if all((bindir / name).is_file() for name in ("initdb", "postgres", "psql")):
            return bindir
    raise InstanceUnavailableError(
        "PostgreSQL server binaries (initdb, postgres) not found: install the PostgreSQL "
        "server package (Debian: postgresql) or set NAZAR_PG_BINDIR"
    )


def _pg_major_version(bindir: Path) -> int:
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=10
    ).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    if match is None:
        raise InstanceError(f"cannot read the PostgreSQL version from {out!r}")
    return int(match.group(1))


PgStopMode = Literal["smart", "fast", "immediate"]
_PG_SIGNALS: dict[str, signal.Signals] = {
    "smart": signal.SIGTERM,
    "fast": signal.SIGINT,
    "immediate": signal.SIGQUIT,
}


class PrivatePostgres(_Instance):
    """A private PostgreSQL server in a temporary directory, on a free port of 127.0.0.1.

    Trust authentication; the superuser is ``postgres``; the unix socket lives in the
    temporary directory; ``fsync`` is on, so committed data survives ``stop("immediate")``
    (a simulated crash: the next start runs crash recovery).  When the test process runs
    as root, the server runs as the ``os_user`` system user (default ``postgres``), since
    ``initdb`` and ``postgres`` refuse to run as root.

    ``settings`` are extra ``postgresql.conf`` parameters, e.g. ``{"log_min_messages": "info"}``.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        settings: Mapping[str, str | int] | None = None,
        os_user: str = "postgres",
    ) -> None:
        self.bindir = find_pg_bindir()
        self._run_as: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._run_as = pwd.getpwnam(os_user)
            except KeyError as exc:
                raise InstanceUnavailableError(
                    f"running as root, and there is no {os_user!r} user to run PostgreSQL as"
                ) from exc
        self.port = port or free_port()
        self.host = LOOPBACK
        self.settings: dict[str, str | int] = {
            "listen_addresses": LOOPBACK,
            "port": self.port,
            "fsync": "on",
            "shared_buffers": "32MB",
            "max_connections": 200,
            "logging_collector": "off",
            "log_line_prefix": "%m [%p] ",
            "log_timezone": "UTC",
            "timezone": "UTC",
        }
        self.version = _pg_major_version(self.bindir)
        if self.version >= 14:
            # Crash recovery first fsyncs every file of the data directory one by one
            # (seconds, even for a tiny cluster); syncfs() does the same in one call.
            self.settings["recovery_init_sync_method"] = "syncfs"
        if settings:
            self.settings.update(settings)
        self.base_dir = _make_base_dir("nazar-pg-")
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "sock"
        self.log_file = self.base_dir / "postgres.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()
        self._initialized = False
        super().__init__()
        try:
            self.socket_dir.mkdir()
            if self._run_as is not None:
                for path in (self.base_dir, self.socket_dir):
                    os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)
        except BaseException:
            self.cleanup()
            raise

    # ----------------------------------------------------------------- processes

    def _popen_kwargs(self) -> dict[str, Any]:
        env = _clean_env(("PG",))
        env.update({"LC_ALL": "C", "LANG": "C", "TZ": "UTC"})
        kwargs: dict[str, Any] = {"env": env, "cwd": self.base_dir, "stdin": subprocess.DEVNULL}
        if self._run_as is not None:
            env.update({"HOME": str(self.base_dir), "USER": self._run_as.pw_name})
            kwargs.update(user=self._run_as.pw_uid, group=self._run_as.pw_gid, extra_groups=[])
        return kwargs

    def _initdb(self) -> None:
        # --no-sync only skips flushing the freshly created files: the server runs with fsync.
        result = subprocess.run(
            [
                str(self.bindir / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                "postgres",
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            capture_output=True,
            timeout=120,
            check=False,
            **self._popen_kwargs(),
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise InstanceError(f"initdb failed ({result.returncode}):\n{output}")
        lines = ["", "# Nazar private test instance"]
        settings = {**self.settings, "unix_socket_directories": str(self.socket_dir)}
        for key, value in settings.items():
            quoted = str(value).replace("'", "''")
            lines.append(f"{key} = '{quoted}'")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(lines) + "\n")
        self._initialized = True

    def _ready(self) -> bool:
        try:
            status = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        # Line 8 of postmaster.pid is the postmaster status (PostgreSQL >= 10), as pg_ctl uses.
        return len(status) >= 8 and status[7].strip() == "ready" and port_accepts(self.port)

    def start(self, timeout: float = 60.0) -> None:
        """Start the server (running ``initdb`` first, once); return when it accepts connections."""
        with self._lock:
            if self._cleaned:
                raise InstanceError("this PrivatePostgres has been cleaned up")
            if self.is_running:
                return
            if not self._initialized:
                self._initdb()
            with self.log_file.open("ab") as log:
                self._proc = subprocess.Popen(
                    [str(self.bindir / "postgres"), "-D", str(self.data_dir)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    **self._popen_kwargs(),
                )
            proc = self._proc
            self._watch(proc.pid, signal.SIGQUIT)  # immediate shutdown
            try:
                _wait_until(
                    self._ready,
                    timeout,
                    f"PostgreSQL on port {self.port}",
                    alive=lambda: proc.poll() is None,
                    on_failure=lambda: _tail(self.log_file),
                )
            except InstanceError:
                self.stop("immediate")
                raise

    def stop(self, mode: PgStopMode = "fast", timeout: float = 60.0) -> None:
        """Stop the server: ``smart`` waits for clients, ``fast`` disconnects them and shuts
        down cleanly, ``immediate`` aborts at once (like a crash; the next start recovers)."""
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(_PG_SIGNALS[mode])
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    _kill_group(proc.pid)
                    proc.wait(10)
            # The postmaster waits for its children before exiting; catch strays anyway.
            _kill_group(proc.pid)
            self._unwatch(proc.pid)
            self._proc = None

    def restart(self, mode: PgStopMode = "fast", timeout: float = 60.0) -> None:
        self.stop(mode, timeout)
        self.start(timeout)

    # The async variants run the blocking call in a worker thread; ``max_wait`` is its
    # ``timeout`` (cancelling the awaiting task could not stop the thread).
    async def astart(self, max_wait: float = 60.0) -> None:
        await asyncio.to_thread(self.start, max_wait)

    async def astop(self, mode: PgStopMode = "fast", max_wait: float = 60.0) -> None:
        await asyncio.to_thread(self.stop, mode, max_wait)

    async def arestart(self, mode: PgStopMode = "fast", max_wait: float = 60.0) -> None:
        await asyncio.to_thread(self.restart, mode, max_wait)

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while running."""
        return self._proc.pid if self.is_running and self._proc is not None else None

    # ----------------------------------------------------------------- clients

    def dsn(self, dbname: str = "postgres", user: str = "postgres") -> str:
        """A libpq/asyncpg connection URL, e.g. ``postgresql://postgres@127.0.0.1:PORT/db``."""
        return f"postgresql://{user}@{self.host}:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL with ``psql`` (unaligned, tuples only) and return its output."""
        result = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                dbname,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=_clean_env(("PG",)),
        )
        if result.returncode != 0:
            raise InstanceError(f"psql failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def create_database(self, name: str) -> None:
        """Create database ``name`` unless it exists (the server must be running)."""
        literal = name.replace("'", "''")
        if self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{literal}'").strip():
            return
        identifier = name.replace('"', '""')
        self.psql(f'CREATE DATABASE "{identifier}"')

    # ----------------------------------------------------------------- cleanup

    def cleanup(self) -> None:
        """Stop the server (immediately) and delete its directory.  Idempotent."""
        with self._lock:
            if self._cleaned:
                return
            try:
                self.stop("immediate")
            finally:
                shutil.rmtree(self.base_dir, ignore_errors=True)
                self._forget()

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<PrivatePostgres port={self.port} {state} dir={self.base_dir}>"


# --------------------------------------------------------------------------- RabbitMQ


def find_rabbitmq_sbin() -> Path:
    """The directory of the real ``rabbitmq-server`` and ``rabbitmqctl`` scripts.

    Debian's ``/usr/sbin/rabbitmq-server`` is a wrapper that re-runs the script as the
    ``rabbitmq`` user (with its cookie and home) -- useless for a private node, so it is
    resolved to the directory the real scripts live in.
    """
    candidates: list[Path] = []
    if env := os.environ.get("NAZAR_RABBITMQ_SBIN"):
        candidates.append(Path(env))
    candidates.append(Path("/usr/lib/rabbitmq/bin"))
    if found := shutil.which("rabbitmq-server"):
        candidates.append(Path(found).resolve().parent)
    for directory in candidates:
        server = directory / "rabbitmq-server"
        ctl = directory / "rabbitmqctl"
        if not (server.is_file() and ctl.is_file()):
            continue
        real = server.resolve()
        if real.name == "rabbitmq-script-wrapper":
            continue
        return real.parent
    raise InstanceUnavailableError(
        "RabbitMQ not found: install it (Debian: rabbitmq-server) or set NAZAR_RABBITMQ_SBIN "
        "to the directory holding the rabbitmq-server and rabbitmqctl scripts"
    )


RabbitStopMode = Literal["graceful", "kill"]

_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


def amqp_answers(port: int, host: str = LOOPBACK, timeout: float = 2.0) -> bool:
    """Whether an AMQP 0-9-1 broker answers the protocol header with ``Connection.Start``."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(_AMQP_HEADER)
            first = sock.recv(1)
    except OSError:
        return False
    return first == b"\x01"  # a method frame


class PrivateRabbitMQ(_Instance):
    """A private RabbitMQ node on this machine, in a temporary directory.

    It has its own node name (``nazar-test-<random>@localhost``), AMQP port, distribution
    port, ``epmd`` (on a private port), Erlang cookie (``HOME`` is the temporary directory)
    and an empty plugin list, so it neither sees nor disturbs any other node.  Listeners
    are bound to 127.0.0.1; the ``guest``/``guest`` user works from there.

    The server runs in the foreground as a child of the test process (own process group);
    ``stop()`` uses ``rabbitmqctl stop``, ``stop("kill")`` SIGKILLs the whole group (a crash).
    Start takes a few seconds.
    """

    def __init__(
        self,
        *,
        node_name: str | None = None,
        port: int | None = None,
        dist_port: int | None = None,
        extra_config: str = "",
    ) -> None:
        self.sbin = find_rabbitmq_sbin()
        ports = free_ports(3)
        self.port = port or ports[0]
        self.dist_port = dist_port or ports[1]
        self.epmd_port = ports[2]
        self.host = LOOPBACK
        self.node = node_name or f"nazar-test-{secrets.token_hex(4)}@localhost"
        self.extra_config = extra_config
        self.base_dir = _make_base_dir("nazar-rmq-")
        self.log_dir = self.base_dir / "log"
        self.stdout_file = self.base_dir / "server.out"
        self._proc: subprocess.Popen[bytes] | None = None
        self._epmd: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()
        super().__init__()
        try:
            self._write_files()
        except BaseException:
            self.cleanup()
            raise

    # ----------------------------------------------------------------- setup

    def _write_files(self) -> None:
        base = self.base_dir
        (base / "mnesia").mkdir()
        self.log_dir.mkdir()
        config = [
            f"listeners.tcp.1 = {LOOPBACK}:{self.port}",
            "log.console = false",
            "log.file.level = info",
            "disk_free_limit.absolute = 10MB",
        ]
        (base / "rabbitmq.conf").write_text("\n".join(config) + "\n" + self.extra_config + "\n")
        (base / "enabled_plugins").write_text("[].\n")
        # Our own (empty) rabbitmq-env.conf: the system one may set NODENAME and friends.
        (base / "rabbitmq-env.conf").write_text("")
        cookie = base / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)

    @property
    def env(self) -> dict[str, str]:
        """The environment for the server and for CLI tools aimed at this node."""
        base = self.base_dir
        env = _clean_env(("RABBITMQ_", "ERL_"))
        env.update(
            {
                "HOME": str(base),  # -> $HOME/.erlang.cookie
                "RABBITMQ_NODENAME": self.node,
                "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
                "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.log_dir),
                "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
                "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
                "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
                    "-kernel inet_dist_use_interface {127,0,0,1}"
                ),
                "RABBITMQ_CTL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
                "ERL_EPMD_PORT": str(self.epmd_port),
                "ERL_EPMD_ADDRESS": LOOPBACK,
            }
        )
        return env

    @property
    def url(self) -> str:
        """``amqp://guest:guest@127.0.0.1:PORT/``"""
        return f"amqp://guest:guest@{self.host}:{self.port}/"

    # ----------------------------------------------------------------- processes

    def _ensure_epmd(self) -> None:
        if self._epmd is not None and self._epmd.poll() is None:
            return
        epmd = shutil.which("epmd") or next(
            (str(p) for p in sorted(Path("/usr/lib/erlang").glob("erts-*/bin/epmd"))), None
        )
        if epmd is None:
            raise InstanceUnavailableError("epmd (Erlang) not found")
        with (self.log_dir / "epmd.log").open("ab") as log:
            self._epmd = subprocess.Popen(
                [epmd, "-port", str(self.epmd_port), "-address", LOOPBACK],
                env=self.env,
                cwd=self.base_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        epmd_proc = self._epmd
        self._watch(epmd_proc.pid, signal.SIGKILL)
        _wait_until(
            lambda: port_accepts(self.epmd_port),
            10,
            f"epmd on port {self.epmd_port}",
            alive=lambda: epmd_proc.poll() is None,
            on_failure=lambda: _tail(self.log_dir / "epmd.log"),
        )

    def rabbitmqctl(
        self, *args: str, timeout: float = 60.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``rabbitmqctl -n <node> ARGS`` against this node."""
        result = subprocess.run(
            [str(self.sbin / "rabbitmqctl"), "-n", self.node, *args],
            env=self.env,
            cwd=self.base_dir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise InstanceError(
                f"rabbitmqctl {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
        return result

    def _rows(self, *args: str) -> list[list[str]]:
        out = self.rabbitmqctl("-q", *args, "--no-table-headers").stdout
        return [line.split("\t") for line in out.splitlines() if line.strip()]

    def consumer_queues(self, vhost: str = "/") -> list[str]:
        """The queue of every consumer attached right now (one entry per consumer)."""
        return [row[0] for row in self._rows("list_consumers", "-p", vhost, "queue_name")]

    def connection_pids(self, name_contains: str = "") -> list[str]:
        """Connections whose ``connection_name`` client property contains ``name_contains``."""
        found = []
        for row in self._rows("list_connections", "pid", "client_properties"):
            if len(row) == 2 and '{"connection_name","' in row[1]:
                name = row[1].split('{"connection_name","', 1)[1].split('"', 1)[0]
                if name_contains in name:
                    found.append(row[0])
        return found

    def close_connections(self, name_contains: str = "", reason: str = "closed by test") -> int:
        """``rabbitmqctl close_connection`` for each matching connection; returns how many."""
        pids = self.connection_pids(name_contains)
        for pid in pids:
            self.rabbitmqctl("close_connection", pid, reason, check=False)
        return len(pids)

    def stop_app(self) -> None:
        """``rabbitmqctl stop_app``: the node stays up, RabbitMQ itself stops."""
        self.rabbitmqctl("stop_app")

    def start_app(self) -> None:
        self.rabbitmqctl("start_app")
        self.rabbitmqctl("await_startup", "--timeout", "60", timeout=70)

    def pause(self) -> None:
        """SIGSTOP the node (it answers nothing until :meth:`resume`): a hung broker."""
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGCONT)

    def _failure_detail(self) -> str:
        return _tail(self.stdout_file) + _tail(self.log_dir / f"{self.node}.log")

    def start(self, timeout: float = 120.0) -> None:
        """Start the node; return once AMQP is served and ``rabbitmqctl await_startup`` agrees."""
        with self._lock:
            if self._cleaned:
                raise InstanceError("this PrivateRabbitMQ has been cleaned up")
            if self.is_running:
                return
            deadline = time.monotonic() + timeout
            self._ensure_epmd()
            with self.stdout_file.open("ab") as out:
                self._proc = subprocess.Popen(
                    [str(self.sbin / "rabbitmq-server")],
                    env=self.env,
                    cwd=self.base_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            proc = self._proc
            self._watch(proc.pid, signal.SIGKILL)
            try:
                _wait_until(
                    lambda: amqp_answers(self.port),
                    max(deadline - time.monotonic(), 1.0),
                    f"RabbitMQ node {self.node} (AMQP port {self.port})",
                    alive=lambda: proc.poll() is None,
                    on_failure=self._failure_detail,
                )
                remaining = max(deadline - time.monotonic(), 5.0)
                self.rabbitmqctl(
                    "await_startup", "--timeout", str(int(remaining)), timeout=remaining + 10
                )
            except (InstanceError, subprocess.TimeoutExpired):
                self.stop("kill")
                raise

    def stop(self, mode: RabbitStopMode = "graceful", timeout: float = 60.0) -> None:
        """Stop the node: ``graceful`` (``rabbitmqctl stop``) or ``kill`` (SIGKILL, a crash)."""
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            if proc.poll() is None and mode == "graceful":
                try:
                    self.rabbitmqctl("stop", timeout=timeout, check=False)
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    # The startup script turns SIGTERM into a clean shutdown of the VM.
                    with contextlib.suppress(ProcessLookupError):
                        proc.terminate()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(15)
            # Whatever is left of the group (everything, for mode="kill") dies now.
            _kill_group(proc.pid)
            proc.wait(15)
            _wait_until(lambda: not _group_alive(proc.pid), 10, f"processes of {self.node}")
            self._unwatch(proc.pid)
            self._proc = None

    def restart(self, mode: RabbitStopMode = "graceful", timeout: float = 120.0) -> None:
        self.stop(mode)
        self.start(timeout)

    # Run in a worker thread, see PrivatePostgres.astart.
    async def astart(self, max_wait: float = 120.0) -> None:
        await asyncio.to_thread(self.start, max_wait)

    async def astop(self, mode: RabbitStopMode = "graceful", max_wait: float = 60.0) -> None:
        await asyncio.to_thread(self.stop, mode, max_wait)

    async def arestart(self, mode: RabbitStopMode = "graceful", max_wait: float = 120.0) -> None:
        await asyncio.to_thread(self.restart, mode, max_wait)

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The pid of the startup script (leader of the node's process group) while running."""
        return self._proc.pid if self.is_running and self._proc is not None else None

    # ----------------------------------------------------------------- cleanup

    def cleanup(self) -> None:
        """Kill the node and its epmd, delete the directory.  Idempotent."""
        with self._lock:
            if self._cleaned:
                return
            try:
                self.stop("kill")
            finally:
                epmd = self._epmd
                if epmd is not None:
                    _kill_group(epmd.pid)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        epmd.wait(10)
                    self._unwatch(epmd.pid)
                    self._epmd = None
                shutil.rmtree(self.base_dir, ignore_errors=True)
                self._forget()

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<PrivateRabbitMQ {self.node} port={self.port} {state} dir={self.base_dir}>"


# --------------------------------------------------------------------------- fixtures


@contextlib.contextmanager
def running_postgres(**kwargs: Any) -> Iterator[PrivatePostgres]:
    """A started :class:`PrivatePostgres`, cleaned up on exit."""
    with PrivatePostgres(**kwargs) as pg:
        pg.start()
        yield pg


@contextlib.contextmanager
def running_rabbitmq(**kwargs: Any) -> Iterator[PrivateRabbitMQ]:
    """A started :class:`PrivateRabbitMQ`, cleaned up on exit."""
    with PrivateRabbitMQ(**kwargs) as rmq:
        rmq.start()
        yield rmq
