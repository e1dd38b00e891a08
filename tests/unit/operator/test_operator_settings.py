"""Operator settings from NAZAR_* variables."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from nazar_operator.settings import OperatorSettings


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAZAR_API_URL", "http://nazar-ingest:8080")
    monkeypatch.setenv("NAZAR_API_KEY", "nzr_a_b")
    monkeypatch.setenv("NAZAR_OPERATOR_NAMESPACES", "team-a, team-b")
    monkeypatch.setenv("NAZAR_OPERATOR_LISTEN_HOST", "0.0.0.0")
    monkeypatch.setenv("NAZAR_SCALER_MAX_REPLICAS", "8")
    settings = OperatorSettings()
    assert settings.api_url == "http://nazar-ingest:8080"
    assert settings.api_key.get_secret_value() == "nzr_a_b"
    assert "nzr_a_b" not in repr(settings)
    assert settings.operator_namespaces == ["team-a", "team-b"]
    assert settings.liveness_endpoint == "http://0.0.0.0:8083/healthz"
    assert settings.scaler_max_replicas == 8


def test_replica_bounds_are_checked() -> None:
    with pytest.raises(ValidationError, match="scaler_min_replicas"):
        OperatorSettings(scaler_min_replicas=5, scaler_max_replicas=2)
