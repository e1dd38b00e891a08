#!/usr/bin/env python3
"""Start the whole Nazar stack on this machine, in the foreground.

Migrates the database, creates an admin key and an ingest key for the local
agent, starts ingest (API + dashboard), the analyzer, the notifier and an
agent for this machine, prints the URLs and the admin key, and stops
everything on Ctrl-C. Used by ``make up``; PostgreSQL and RabbitMQ are
started beforehand by ``scripts/ensure-services.sh``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".run"


def run_cli(*args: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "nazar_cli.main", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def create_key(scope: str, name: str, env: dict[str, str]) -> str:
    return (
        run_cli("keys", "create", "--scope", scope, "--name", name, env=env)
        .strip()
        .splitlines()[-1]
    )


def wait_http(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        time.sleep(0.3)
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, default=int(os.environ.get("NAZAR_LISTEN_PORT", "8080")))
    ap.add_argument("--no-agent", action="store_true", help="do not start the local agent")
    args = ap.parse_args()

    STATE.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "NAZAR_DATABASE_URL": os.environ.get(
            "NAZAR_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/nazar"
        ),
        "NAZAR_AMQP_URL": os.environ.get("NAZAR_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
        "NAZAR_LISTEN_PORT": str(args.port),
        "NAZAR_LOG_FORMAT": os.environ.get("NAZAR_LOG_FORMAT", "text"),
        "NAZAR_PUBLIC_URL": os.environ.get("NAZAR_PUBLIC_URL", f"http://127.0.0.1:{args.port}"),
    }
    print("migrating the database ...", flush=True)
    run_cli("migrate", env=env)
    admin_key = create_key("admin", "make-up admin", env)
    agent_key = create_key("ingest", "make-up agent", env)

    logs = STATE / "logs"
    logs.mkdir(exist_ok=True)
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str, module: str, extra: dict[str, str] | None = None) -> None:
        log = open(logs / f"{name}.log", "ab")
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", module],
            env={**env, **(extra or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    start("ingest", "nazar_ingest")
    base = f"http://127.0.0.1:{args.port}"
    if not wait_http(base + "/healthz", 60):
        print(f"ingest did not start; see {logs / 'ingest.log'}", file=sys.stderr)
        stop(procs)
        return 1
    for component in ("analyzer", "notifier"):
        if importlib.util.find_spec(f"nazar_{component}.__main__") is not None:
            start(component, f"nazar_{component}")
    if not args.no_agent:
        start(
            "agent",
            "nazar_agent",
            {
                "NAZAR_AGENT_URL": base,
                "NAZAR_AGENT_API_KEY": agent_key,
                "NAZAR_AGENT_BUFFER_DIR": str(STATE / "agent-buffer"),
                "NAZAR_AGENT_LABELS": "env=local",
            },
        )
    wait_http(base + "/readyz", 30)
    print(
        f"""
Nazar is running.
  Dashboard:   {base}/
  API docs:    {base}/docs
  Health:      {base}/healthz   {base}/readyz   {base}/metrics
  Admin key:   {admin_key}
  Logs:        {logs}/
  Started:     {", ".join(procs)}
Try:  curl -H 'Authorization: Bearer {admin_key}' '{base}/api/v1/hosts'
Press Ctrl-C to stop.""",
        flush=True,
    )
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(
                    f"{name} exited with {proc.returncode}; see {logs / (name + '.log')}",
                    file=sys.stderr,
                )
                stopping = True
                break
        time.sleep(0.5)
    print("\nstopping ...", flush=True)
    stop(procs)
    return 0


def stop(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for proc in procs.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    sys.exit(main())
