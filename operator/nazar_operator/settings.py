"""Settings of the operator deployable (``NAZAR_*``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from nazar_common.settings import CommonSettings


class OperatorSettings(CommonSettings):
    api_url: str = Field(
        default="http://127.0.0.1:8080",
        description="Nazar API base URL the operator applies rules to.",
    )
    api_key: SecretStr = Field(
        default=SecretStr(""),
        description="API key the operator uses: the rules scope is enough (it writes rules and "
        "reads their alerts); an admin key works too.",
    )
    api_timeout: float = Field(
        default=10.0, gt=0, description="Seconds one Nazar API call may take."
    )
    operator_namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Namespaces whose AlertRules and MonitoredHosts are handled, comma-separated "
        "(empty: the whole cluster).",
    )
    operator_listen_host: str = Field(
        default="127.0.0.1", description="Address of the operator's /healthz endpoint."
    )
    operator_listen_port: int = Field(
        default=8083, ge=1, le=65535, description="Port of the operator's /healthz endpoint."
    )
    operator_retry_delay: float = Field(
        default=30.0, gt=0,
        description="Seconds before a resource is retried after the Nazar API was unavailable.",
    )
    operator_resync_interval: float = Field(
        default=300.0, gt=0,
        description="Seconds between re-applications of each resource's spec: rules changed or "
        "deleted through the API are put back, rules another owner held are tried again.",
    )
    operator_status_interval: float = Field(
        default=60.0, gt=0,
        description="Seconds between refreshes of each AlertRule's firing alerts in its status.",
    )
    operator_peering: str = Field(
        default="nazar-operator",
        pattern=r"^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?)?$",
        description="Name of the kopf peering object the replicas elect their one active "
        "operator through (created if missing); empty: no election, a single replica only.",
    )
    operator_peering_lifetime: int = Field(
        default=20, ge=5, le=600,
        description="Seconds a replica stays elected after its last heartbeat (kopf peering "
        "lifetime): how soon a standby takes over from a killed replica. Heartbeats come "
        "5-10 s before it ends.",
    )
    scaler_enabled: bool = Field(
        default=False, description="Scale the analyzer Deployment on its queue depth."
    )
    scaler_interval: float = Field(
        default=15.0, gt=0, description="Seconds between scaling decisions."
    )
    scaler_namespace: str = Field(
        default="default", description="Namespace of the analyzer Deployment."
    )
    scaler_deployment: str = Field(
        default="nazar-analyzer", description="Name of the analyzer Deployment."
    )
    scaler_min_replicas: int = Field(default=1, ge=0, description="Fewest analyzer replicas.")
    scaler_max_replicas: int = Field(default=5, ge=1, description="Most analyzer replicas.")
    scaler_messages_per_replica: int = Field(
        default=1000, ge=1,
        description="Queued sample batches one analyzer replica is expected to absorb.",
    )
    scaler_up_cooldown: float = Field(
        default=60.0, ge=0, description="Seconds after a change before scaling up again."
    )
    scaler_down_cooldown: float = Field(
        default=300.0, ge=0, description="Seconds after a change before scaling down again."
    )

    @field_validator("operator_namespaces", mode="before")
    @classmethod
    def _split_namespaces(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _replica_bounds(self) -> OperatorSettings:
        if self.scaler_min_replicas > self.scaler_max_replicas:
            raise ValueError("scaler_min_replicas must not exceed scaler_max_replicas")
        return self

    @property
    def liveness_endpoint(self) -> str:
        return f"http://{self.operator_listen_host}:{self.operator_listen_port}/healthz"
