"""The whole alert path as separate processes: a real ingest server, the
analyzer and the notifier (``python -m``), a Slack stand-in receiver, and an
agent-shaped client pushing samples. Shared by tests/e2e and bench/e2e.py."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import IngestServer, free_port, start_ingest
from tests.integration.notifier.support import Receiver, wait_http

ROOT = Path(__file__).resolve().parents[2]
CHANNEL = "e2e-slack"
RULE = "cpu-spike"
METRIC = "cpu.usage"
THRESHOLD = 90.0


def _spawn_logged(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen([sys.executable, "-m", module], env=env, cwd=ROOT,
                                stdout=handle, stderr=subprocess.STDOUT)


@dataclass
class Spike:
    host: str
    spike_started: float
    firing_at: float | None = None
    resolved_sent: float | None = None
    resolved_at: float | None = None

    @property
    def firing_latency(self) -> float | None:
        return None if self.firing_at is None else self.firing_at - self.spike_started

    @property
    def resolved_latency(self) -> float | None:
        if self.resolved_at is None or self.resolved_sent is None:
            return None
        return self.resolved_at - self.resolved_sent


@dataclass
class Pipeline:
    database_url: str
    amqp_url: str
    ingest: IngestServer | None = None
    slack: Receiver | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def _env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "NAZAR_DATABASE_URL": self.database_url,
            "NAZAR_AMQP_URL": self.amqp_url,
            "NAZAR_LOG_LEVEL": "WARNING",
            "NAZAR_LOG_FORMAT": "text",
            "NAZAR_DB_POOL_MIN": "1",
            "NAZAR_DB_POOL_MAX": "4",
            **extra,
        }

    async def _spawn(self, name: str, module: str, port: int, env: dict[str, str]) -> None:
        log = Path(tempfile.gettempdir()) / f"nazar-e2e-{name}-{uuid.uuid4().hex[:6]}.log"
        self.logs[name] = log
        self.processes[name] = _spawn_logged(module, env, log)
        try:
            await wait_http(f"http://127.0.0.1:{port}/readyz", timeout=60, proc=None)
        except RuntimeError as exc:
            raise RuntimeError(f"{name} did not become ready: {self.tail(name)}") from exc

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.logs.get(name)
        if path is None or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    async def start(self, *, configure: bool = True, **ingest: object) -> Pipeline:
        """Start everything; ``configure`` adds the Slack channel and the CPU
        rule the latency measurements use. Ingest forwards backtests and
        test notifications to these analyzer and notifier processes;
        ``ingest`` overrides its settings."""
        analyzer_port, notifier_port = free_port(), free_port()
        self.ingest = await start_ingest(
            self.database_url,
            self.amqp_url,
            analyzer_url=f"http://127.0.0.1:{analyzer_port}",
            notifier_url=f"http://127.0.0.1:{notifier_port}",
            **ingest,
        )
        self.slack = Receiver().start()
        if configure:
            async with self.ingest.client() as admin:
                channel = {"name": CHANNEL, "group_wait": 0, "group_interval": 0,
                           "config": {"type": "slack", "webhook_url": self.slack.url + "/hook"}}
                r = await admin.post("/api/v1/channels", json=channel)
                assert r.status_code == 201, r.text
                rule = {"name": RULE, "metric": METRIC, "severity": "critical",
                        "params": {"kind": "threshold", "comparator": ">", "value": THRESHOLD},
                        "channels": [CHANNEL]}
                r = await admin.post("/api/v1/rules", json=rule)
                assert r.status_code == 201, r.text
        await self._spawn("analyzer", "nazar_analyzer", analyzer_port, self._env(
            NAZAR_ANALYZER_LISTEN_PORT=str(analyzer_port)))
        await self._spawn("notifier", "nazar_notifier", notifier_port, self._env(
            NAZAR_NOTIFIER_LISTEN_PORT=str(notifier_port),
            NAZAR_NOTIFIER_POLL_INTERVAL="0.2"))
        return self

    async def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes.values():
            try:
                await asyncio.to_thread(proc.wait, 20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.slack is not None:
            self.slack.stop()
        if self.ingest is not None:
            self.ingest.thread.stop()

    def messages(self, host: str, word: str) -> list[float]:
        assert self.slack is not None
        return [r.at for r in self.slack.requests
                if host in str(r.body.get("blocks")) and word in r.body.get("text", "")]

    async def push(self, client: httpx.AsyncClient, host: str, value: float) -> float:
        sent = time.time()
        body = {"host": host, "labels": {"role": "web"},
                "samples": [{"metric": METRIC, "value": value, "timestamp": sent, "labels": {}}]}
        r = await client.post("/api/v1/metrics", json=body,
                              headers={"Idempotency-Key": uuid.uuid4().hex})
        assert r.status_code == 202, r.text
        return sent

    async def spike(self, host: str, *, normal_s: float = 3.0, spike_s: float = 4.0,
                    interval: float = 0.25, wait_s: float = 30.0) -> Spike:
        """Normal load, then a CPU spike, then normal again; timestamps of the
        first spike sample and of the Slack messages about it."""
        assert self.ingest is not None
        async with self.ingest.client(self.ingest.ingest_key) as agent:
            end = time.monotonic() + normal_s
            i = 0
            while time.monotonic() < end:
                await self.push(agent, host, 30.0 + (i % 5))
                i += 1
                await asyncio.sleep(interval)
            spike = Spike(host, await self.push(agent, host, 99.0))
            end = time.monotonic() + spike_s
            while time.monotonic() < end:
                await asyncio.sleep(interval)
                await self.push(agent, host, 98.0)
                if spike.firing_at is None and self.messages(host, "FIRING"):
                    spike.firing_at = self.messages(host, "FIRING")[0]
            spike.resolved_sent = await self.push(agent, host, 35.0)
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                firing, resolved = self.messages(host, "FIRING"), self.messages(host, "RESOLVED")
                if firing and spike.firing_at is None:
                    spike.firing_at = firing[0]
                if resolved:
                    spike.resolved_at = resolved[0]
                    break
                await asyncio.sleep(interval)
                await self.push(agent, host, 35.0)
        return spike
