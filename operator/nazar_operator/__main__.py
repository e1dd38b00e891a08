"""``nazar-operator``: run the Kubernetes operator (kopf) with /healthz."""

from __future__ import annotations

import asyncio

import kopf

from nazar_common.telemetry import setup_logging
from nazar_operator.handlers import register, register_login
from nazar_operator.settings import OperatorSettings


def main() -> None:
    settings = OperatorSettings()
    setup_logging(settings, "nazar-operator")
    registry = kopf.OperatorRegistry()
    register_login(registry)
    register(registry, settings)
    asyncio.run(
        kopf.operator(
            registry=registry,
            standalone=True,
            clusterwide=not settings.operator_namespaces,
            namespaces=settings.operator_namespaces,
            liveness_endpoint=settings.liveness_endpoint,
        )
    )


if __name__ == "__main__":
    main()
