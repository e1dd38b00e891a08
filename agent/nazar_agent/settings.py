"""Configuration of the agent: the one settings class, built once at start-up."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Annotated, Any

import orjson
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,99}$")
#: What the ingest API accepts as a host name.
HOSTNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,252}$")
#: The ingest API allows 32 labels per series; one is left for the sample's own label.
MAX_HOST_LABELS = 31
MAX_LABEL_VALUE_LENGTH = 1024

_LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})


def parse_labels(raw: Any) -> dict[str, str]:
    """Parse host labels given as a mapping, a JSON object or ``k=v,k=v``."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        items = raw
    elif isinstance(raw, str):
        text = raw.strip()
        if not text:
            return {}
        if text.startswith("{"):
            try:
                items = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"labels are not valid JSON: {exc}") from exc
            if not isinstance(items, dict):
                raise ValueError("labels JSON must be an object")
        else:
            items = {}
            for pair in text.split(","):
                pair = pair.strip()
                if not pair:
                    continue
                key, sep, value = pair.partition("=")
                if not sep:
                    raise ValueError(f"label {pair!r} is not of the form key=value")
                items[key.strip()] = value.strip()
    else:
        raise ValueError("labels must be a JSON object or 'k=v,k=v'")
    labels: dict[str, str] = {}
    for key, value in items.items():
        if not isinstance(key, str) or not LABEL_NAME_RE.match(key):
            raise ValueError(f"invalid label name {key!r} (must match {LABEL_NAME_RE.pattern})")
        if isinstance(value, dict | list) or value is None:
            raise ValueError(f"label {key!r} must have a scalar value")
        text_value = str(value)
        if len(text_value) > MAX_LABEL_VALUE_LENGTH:
            raise ValueError(f"label {key!r} is longer than {MAX_LABEL_VALUE_LENGTH} characters")
        labels[key] = text_value
    if len(labels) > MAX_HOST_LABELS:
        raise ValueError(f"at most {MAX_HOST_LABELS} host labels are allowed")
    return labels


class AgentSettings(BaseSettings):
    """Settings of ``nazar-agent``; every field is read from ``NAZAR_AGENT_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="NAZAR_AGENT_",
        extra="ignore",
        frozen=True,
    )

    url: str = Field(
        default="http://127.0.0.1:8080",
        description="Base URL of the ingest API; batches go to {url}/api/v1/metrics.",
    )
    api_key: SecretStr | None = Field(
        default=None, description="Bearer token sent in the Authorization header."
    )
    interval: float = Field(default=10.0, gt=0, description="Seconds between collections.")
    hostname: str = Field(
        default="",
        validate_default=True,
        description="Host name reported in every batch (empty: the machine's host name).",
    )
    labels: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Host labels attached to every batch: JSON object or 'k=v,k=v'.",
    )
    buffer_dir: Path = Field(
        default=Path("/var/lib/nazar-agent"),
        description="Directory holding the on-disk buffer (buffer.sqlite3).",
    )
    buffer_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=64 * 1024,
        description="Upper bound of the queued (compressed) batch bytes; oldest dropped first.",
    )
    timeout: float = Field(default=10.0, gt=0, description="HTTP timeout per request, seconds.")
    max_batch_samples: int = Field(
        default=1000, ge=1, description="Collections larger than this are split into batches."
    )
    verify_tls: bool = Field(default=True, description="Verify the server's TLS certificate.")
    ca_file: Path | None = Field(
        default=None, description="PEM bundle of CAs to trust instead of the system store."
    )
    backoff_base: float = Field(
        default=1.0, gt=0, description="First retry delay ceiling, seconds (doubles per failure)."
    )
    backoff_cap: float = Field(
        default=60.0, gt=0, description="Maximum retry delay ceiling, seconds (full jitter)."
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return value

    @field_validator("hostname")
    @classmethod
    def _default_hostname(cls, value: str) -> str:
        hostname = value.strip() or socket.gethostname()
        if not HOSTNAME_RE.match(hostname):
            raise ValueError(
                f"hostname {hostname!r} is not accepted by ingest (must match "
                f"{HOSTNAME_RE.pattern}); set NAZAR_AGENT_HOSTNAME"
            )
        return hostname

    @field_validator("labels", mode="before")
    @classmethod
    def _parse_labels(cls, value: Any) -> dict[str, str]:
        return parse_labels(value)

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"log_level must be one of {sorted(_LOG_LEVELS)}")
        return level

    @property
    def ingest_url(self) -> str:
        return f"{self.url}/api/v1/metrics"

    def log_safe(self) -> dict[str, Any]:
        """The settings as a dict fit for logging: the API key is never included."""
        data = self.model_dump(exclude={"api_key"}, mode="json")
        data["api_key_set"] = self.api_key is not None and bool(self.api_key.get_secret_value())
        return data
