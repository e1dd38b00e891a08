"""The ``nazar-agent`` entrypoint as a real process: env config, signals, logs, --once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

import nazar_agent
from nazar_agent.__main__ import main
from tests.integration.agent.agent_ingest_stub import IngestStub

SECRET = "process-test-secret-key"


def agent_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAZAR_AGENT_")}
    package_root = str(Path(nazar_agent.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    env.update(extra)
    return env


async def test_process_delivers_and_stops_gracefully_on_sigterm(
    ingest: IngestStub, tmp_path: Path
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nazar_agent",
        "--log-level",
        "DEBUG",
        env=agent_env(
            NAZAR_AGENT_URL=ingest.url,
            NAZAR_AGENT_API_KEY=SECRET,
            NAZAR_AGENT_INTERVAL="0.5",
            NAZAR_AGENT_HOSTNAME="proc-host",
            NAZAR_AGENT_LABELS="env=ci,team=sre",
            NAZAR_AGENT_BUFFER_DIR=str(tmp_path),
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await ingest.wait_for(lambda s: len(s.accepted()) >= 2, within=15)
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0, stderr.decode()
    payload = ingest.accepted()[0].payload
    assert payload["host"] == "proc-host"
    assert payload["labels"] == {"env": "ci", "team": "sre"}
    assert ingest.accepted()[0].headers["authorization"] == f"Bearer {SECRET}"

    assert stdout == b""
    assert SECRET.encode() not in stderr
    records = [json.loads(line) for line in stderr.decode().splitlines() if line.strip()]
    messages = [record["message"] for record in records]
    assert "agent started" in messages
    assert "stop requested" in messages
    assert messages[-1] == "agent stopped"
    assert all({"level", "logger", "timestamp"} <= set(record) for record in records)
    [started] = [record for record in records if record["message"] == "agent started"]
    assert started["settings"]["api_key_set"] is True
    assert "api_key" not in started["settings"]


async def test_sigint_also_stops(ingest: IngestStub, tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nazar_agent",
        env=agent_env(NAZAR_AGENT_URL=ingest.url, NAZAR_AGENT_BUFFER_DIR=str(tmp_path)),
        stderr=asyncio.subprocess.PIPE,
    )
    await ingest.wait_for(lambda s: len(s.accepted()) >= 1, within=15)
    process.send_signal(signal.SIGINT)
    _, stderr = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0, stderr.decode()


async def test_once_prints_one_collection_without_sending(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nazar_agent",
        "--once",
        "--once-window",
        "0.2",
        "--hostname",
        "dbg",
        "--label",
        "env=dev",
        env=agent_env(NAZAR_AGENT_URL="http://127.0.0.1:9", NAZAR_AGENT_BUFFER_DIR=str(tmp_path)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode == 0, stderr.decode()
    payload = json.loads(stdout)
    assert payload["host"] == "dbg"
    assert payload["labels"] == {"env": "dev"}
    metrics = {sample["metric"] for sample in payload["samples"]}
    assert {"cpu.usage_percent", "mem.used_percent", "net.rx_bytes_per_sec"} <= metrics
    assert not os.listdir(tmp_path)  # --once touches no buffer


@pytest.mark.parametrize("bad", [["--interval", "0"], ["--label", "no-equals-sign"]])
def test_invalid_configuration_exits_2(
    bad: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("NAZAR_AGENT_"):
            monkeypatch.delenv(name)
    assert main(bad) == 2  # returns before logging is configured or anything starts
    assert "invalid configuration" in capsys.readouterr().err
