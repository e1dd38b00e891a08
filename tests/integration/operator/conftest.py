"""Run the operator's kopf loop against kmock (a Kubernetes API emulator)
and a real Nazar API server."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import kmock
import kopf
import pytest

from nazar_operator.handlers import register
from nazar_operator.resources import ALERT_RULES, GROUP, MONITORED_HOSTS, VERSION
from nazar_operator.settings import OperatorSettings
from tests.support.kube import KubernetesServer

NAMESPACE = "team-a"
ALERT_RULES_RES = f"{GROUP}/{VERSION}/{ALERT_RULES}"
MONITORED_HOSTS_RES = f"{GROUP}/{VERSION}/{MONITORED_HOSTS}"


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    """Poll ``check`` until it returns a truthy value (or fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)


def connection(server: kmock.KubernetesEmulator) -> kopf.ConnectionInfo:
    return kopf.ConnectionInfo(server=str(server.url).rstrip("/"))


@pytest.fixture
def kmock_options(kmock_options: dict[str, Any]) -> dict[str, Any]:
    """kmock with uid, resourceVersion and generation (tests/support/kube.py)."""
    return {**kmock_options, "cls": KubernetesServer}


@pytest.fixture
def k8s(kmock: kmock.KubernetesEmulator) -> kmock.KubernetesEmulator:
    """kmock serving the Nazar custom resources (and events)."""
    kmock.resources[ALERT_RULES_RES] = kmock.ResourceInfo(
        kind="AlertRule", singular="alertrule", namespaced=True,
        verbs={"list", "watch", "get", "patch", "create", "delete"}, subresources={"status"},
    )
    kmock.resources[MONITORED_HOSTS_RES] = kmock.ResourceInfo(
        kind="MonitoredHost", singular="monitoredhost", namespaced=True,
        verbs={"list", "watch", "get", "patch", "create", "delete"}, subresources={"status"},
    )
    kmock.resources["v1/events"] = kmock.ResourceInfo(
        kind="Event", namespaced=True, verbs={"create"}
    )
    kmock.resources["v1/namespaces"] = kmock.ResourceInfo(
        kind="Namespace", namespaced=False, verbs={"list", "watch", "get"}
    )
    return kmock


@pytest.fixture(params=["INFO", "DEBUG"])
async def operator(
    request: pytest.FixtureRequest, k8s: kmock.KubernetesEmulator, ingest_server: Any
) -> AsyncIterator[kmock.KubernetesEmulator]:
    """The operator's handlers running in kopf's loop until the test ends, at
    the chart's default log level and at DEBUG: a log call that fails only
    when its level is enabled must fail here."""
    root = logging.getLogger()
    saved_level = root.level
    root.setLevel(request.param)
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection(k8s)

    settings = OperatorSettings(
        api_url=ingest_server.url,
        api_key=ingest_server.admin_key,
        operator_retry_delay=1.0,
        operator_peering="",
        log_format="text",
    )
    register(registry, settings)
    kopf_settings = kopf.OperatorSettings()
    # kmock cannot parse the cluster-wide namespace list: watch the given namespace as is.
    kopf_settings.scanning.disabled = True
    kopf_settings.watching.reconnect_backoff = 0.1
    kopf_settings.batching.batch_window = 0.01
    kopf_settings.batching.idle_timeout = 1.0
    # kopf runs in a thread with a loop of its own: at exit it cancels every task
    # spawned in its loop while it ran, which must not include the tests' tasks.
    stop = threading.Event()
    ready = threading.Event()

    def run() -> None:
        asyncio.run(
            kopf.operator(
                registry=registry,
                settings=kopf_settings,
                standalone=True,
                namespaces=[NAMESPACE],
                stop_flag=stop,
                ready_flag=ready,
            )
        )

    thread = threading.Thread(target=run, name="kopf", daemon=True)
    thread.start()
    assert await asyncio.to_thread(ready.wait, 15), "the operator did not start"
    yield k8s
    stop.set()
    await asyncio.to_thread(thread.join, 15)
    root.setLevel(saved_level)
