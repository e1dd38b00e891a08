"""``nazar-operator``: run the Kubernetes operator (kopf) with /healthz."""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import socket

import kopf

from nazar_common.telemetry import setup_logging
from nazar_operator.handlers import register, register_login
from nazar_operator.settings import OperatorSettings


def main() -> None:
    settings = OperatorSettings()
    setup_logging(settings, "nazar-operator")
    registry = kopf.OperatorRegistry()
    register_login(registry)
    # This replica's name in the peering object: the pod's name in a cluster.
    identity = f"{os.environ.get('POD_NAME') or socket.gethostname()}/{secrets.token_hex(4)}"
    register(registry, settings, identity=identity)
    asyncio.run(
        kopf.operator(
            registry=registry,
            # One active replica: kopf pauses every peer but the one of highest
            # priority; a random priority elects one without configuration.
            standalone=not settings.operator_peering,
            peering_name=settings.operator_peering or None,
            priority=random.randint(1, 2**31 - 1),
            identity=identity,  # type: ignore[arg-type]  # kopf's Identity: a NewType of str
            clusterwide=not settings.operator_namespaces,
            namespaces=settings.operator_namespaces,
            liveness_endpoint=settings.liveness_endpoint,
        )
    )


if __name__ == "__main__":
    main()
