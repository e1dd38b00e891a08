from __future__ import annotations

import socket
from pathlib import Path

import pytest
from pydantic import ValidationError

from nazar_agent.__main__ import build_parser, overrides_from_args
from nazar_agent.settings import AgentSettings, parse_labels


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("NAZAR_AGENT_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = AgentSettings()
    assert settings.url == "http://127.0.0.1:8080"
    assert settings.ingest_url == "http://127.0.0.1:8080/api/v1/metrics"
    assert settings.api_key is None
    assert settings.interval == 10.0
    assert settings.hostname == socket.gethostname()
    assert settings.labels == {}
    assert settings.buffer_dir == Path("/var/lib/nazar-agent")
    assert settings.max_batch_samples == 1000
    assert settings.verify_tls is True
    assert settings.ca_file is None


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAZAR_AGENT_URL", "https://ingest.example.com/")
    monkeypatch.setenv("NAZAR_AGENT_API_KEY", "s3cret")
    monkeypatch.setenv("NAZAR_AGENT_INTERVAL", "2.5")
    monkeypatch.setenv("NAZAR_AGENT_HOSTNAME", "web-1")
    monkeypatch.setenv("NAZAR_AGENT_LABELS", '{"env": "prod", "dc": "fra1"}')
    monkeypatch.setenv("NAZAR_AGENT_VERIFY_TLS", "false")
    settings = AgentSettings()
    assert settings.ingest_url == "https://ingest.example.com/api/v1/metrics"
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "s3cret"
    assert settings.interval == 2.5
    assert settings.hostname == "web-1"
    assert settings.labels == {"env": "prod", "dc": "fra1"}
    assert settings.verify_tls is False


def test_labels_key_value_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAZAR_AGENT_LABELS", "env=prod, role=web,")
    assert AgentSettings().labels == {"env": "prod", "role": "web"}


@pytest.mark.parametrize("raw", ["env", "1bad=x", "bad-name=x", '["a"]', "{not json", '{"a": {}}'])
def test_invalid_labels(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_labels(raw)


def test_invalid_values() -> None:
    with pytest.raises(ValidationError):
        AgentSettings(url="ftp://x")
    with pytest.raises(ValidationError):
        AgentSettings(interval=0)
    with pytest.raises(ValidationError):
        AgentSettings(max_batch_samples=0)
    with pytest.raises(ValidationError):
        AgentSettings(log_level="chatty")
    with pytest.raises(ValidationError):
        AgentSettings(hostname="web 1")
    with pytest.raises(ValidationError):
        AgentSettings(labels={f"l{i}": "x" for i in range(40)})
    with pytest.raises(ValidationError):
        AgentSettings(labels={"long": "x" * 2000})


def test_api_key_never_appears_in_logs_or_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAZAR_AGENT_API_KEY", "top-secret-key")
    settings = AgentSettings()
    assert "top-secret-key" not in repr(settings)
    assert "top-secret-key" not in str(settings.log_safe())
    assert settings.log_safe()["api_key_set"] is True


def test_cli_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAZAR_AGENT_URL", "http://from-env:1")
    monkeypatch.setenv("NAZAR_AGENT_INTERVAL", "30")
    monkeypatch.setenv("NAZAR_AGENT_LABELS", "env=prod")
    args = build_parser().parse_args(
        ["--url", "http://from-cli:2", "--label", "env=dev", "--label", "team=sre", "--insecure"]
    )
    settings = AgentSettings(**overrides_from_args(args))
    assert settings.url == "http://from-cli:2"
    assert settings.interval == 30.0  # not given on the command line: env wins
    assert settings.labels == {"env": "dev", "team": "sre"}
    assert settings.verify_tls is False
