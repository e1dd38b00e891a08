"""kopf handlers: they register, gather the resource's fields and delegate.

Desired rules come from :mod:`nazar_operator.reconcile` (pure), the API calls
from :mod:`nazar_operator.nazar_api`. Errors are translated here, once:
:class:`InvalidInputError` → ``kopf.PermanentError`` (condition ``Ready=False``,
reason ``Invalid``), :class:`TransientError` → ``kopf.TemporaryError`` with a
delay (reason ``ApiUnavailable``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

import kopf

from nazar_common.errors import InvalidInputError, NazarError, TransientError
from nazar_common.messaging.topology import ANALYZER_SAMPLES
from nazar_operator.nazar_api import NazarApi
from nazar_operator.queue import QueueDepth
from nazar_operator.reconcile import (
    REASON_FAILED,
    REASON_INVALID,
    REASON_UNAVAILABLE,
    RuleBody,
    alert_rule_body,
    failed_status,
    monitored_host_bodies,
    owned_rules,
    ready_status,
    rule_name,
    sync_plan,
)
from nazar_operator.resources import (
    ALERT_RULES,
    ANNOTATIONS_PREFIX,
    FINALIZER,
    GROUP,
    MONITORED_HOSTS,
    VERSION,
)
from nazar_operator.scaler import Connect, Scaler
from nazar_operator.scaling import ScalingPolicy
from nazar_operator.settings import OperatorSettings


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _set_status(patch: kopf.Patch, status: Mapping[str, Any]) -> None:
    for key, value in status.items():
        patch.status[key] = value


async def cluster_login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
    """The pod's service account in a cluster, else the kubeconfig."""
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
        settings=settings
    )
    if info is None:
        raise kopf.LoginError("neither a service account nor a kubeconfig is available")
    return info


def register_login(registry: kopf.OperatorRegistry) -> None:
    kopf.on.login(registry=registry)(cluster_login)


class RuleSync:
    """Applies the desired rules of one resource and reports the outcome in its status."""

    def __init__(self, api: NazarApi, retry_delay: float) -> None:
        self.api = api
        self.retry_delay = retry_delay

    async def apply(
        self,
        desired: Callable[[], Sequence[RuleBody]],
        status: Mapping[str, Any],
        generation: int | None,
        patch: kopf.Patch,
        fields: Callable[[list[dict[str, Any]]], dict[str, Any]],
    ) -> None:
        previous = status.get("conditions")
        try:
            bodies = desired()
            plan = sync_plan(bodies, owned_rules(status, ()))
            stored = [await self.api.put_rule(body.name, body.body) for body in plan.put]
            for name in plan.delete:
                await self.api.delete_rule(name)
        except NazarError as exc:
            self._fail(exc, status, generation, patch)
        names = ", ".join(body.name for body in plan.put)
        _set_status(
            patch,
            ready_status(generation, previous, _now(), f"applied as {names}", **fields(stored)),
        )

    async def delete(self, names: Sequence[str]) -> None:
        try:
            for name in names:
                await self.api.delete_rule(name)
        except TransientError as exc:
            raise kopf.TemporaryError(
                exc.detail, delay=exc.retry_after or self.retry_delay
            ) from exc
        except NazarError as exc:
            raise kopf.PermanentError(exc.detail) from exc

    def _fail(
        self,
        exc: NazarError,
        status: Mapping[str, Any],
        generation: int | None,
        patch: kopf.Patch,
    ) -> NoReturn:
        previous = status.get("conditions")
        if isinstance(exc, TransientError):
            _set_status(
                patch, failed_status(generation, previous, _now(), REASON_UNAVAILABLE, exc.detail)
            )
            raise kopf.TemporaryError(
                exc.detail, delay=exc.retry_after or self.retry_delay
            ) from exc
        reason = REASON_INVALID if isinstance(exc, InvalidInputError) else REASON_FAILED
        _set_status(patch, failed_status(generation, previous, _now(), reason, exc.detail))
        raise kopf.PermanentError(exc.detail) from exc


def _namespace(namespace: str | None) -> str:
    if not namespace:  # the resources are namespaced: never the case
        raise kopf.PermanentError("a Nazar resource without a namespace")
    return namespace


def _host_rule_names(namespace: str, name: str, spec: Mapping[str, Any]) -> list[str]:
    try:
        return [body.name for body in monitored_host_bodies(namespace, name, spec)]
    except InvalidInputError:
        return [rule_name(namespace, name)]


def register(
    registry: kopf.OperatorRegistry,
    settings: OperatorSettings,
    connect: Connect | None = None,
) -> None:
    """Register every handler on ``registry``.

    ``connect`` gives the scaler its Kubernetes credentials (default: the
    service account or kubeconfig, as kopf's own login).
    """
    nazar = settings
    state: dict[str, Any] = {}

    def sync() -> RuleSync:
        return state["sync"]  # type: ignore[no-any-return]

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix=ANNOTATIONS_PREFIX
        )
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=ANNOTATIONS_PREFIX, key="last-handled-configuration"
        )
        settings.posting.level = logging.WARNING
        api = NazarApi(
            nazar.api_url, nazar.api_key.get_secret_value(), timeout=nazar.api_timeout
        )
        state["sync"] = RuleSync(api, nazar.operator_retry_delay)
        if nazar.scaler_enabled:
            login: Connect = connect or functools.partial(cluster_login, settings=settings)
            scaler = Scaler(
                QueueDepth(nazar.amqp_url.get_secret_value(), ANALYZER_SAMPLES.name),
                login,
                nazar.scaler_namespace,
                nazar.scaler_deployment,
                ScalingPolicy(
                    min_replicas=nazar.scaler_min_replicas,
                    max_replicas=nazar.scaler_max_replicas,
                    messages_per_replica=nazar.scaler_messages_per_replica,
                    up_cooldown=nazar.scaler_up_cooldown,
                    down_cooldown=nazar.scaler_down_cooldown,
                ),
            )
            stopped = asyncio.Event()
            state["scaler"] = (scaler, stopped)
            state["scaler_task"] = asyncio.create_task(
                scaler.run(nazar.scaler_interval, stopped), name="nazar-scaler"
            )

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        if "scaler" in state:
            scaler, stopped = state.pop("scaler")
            stopped.set()
            with contextlib.suppress(asyncio.CancelledError):
                await state.pop("scaler_task")
            await scaler.aclose()
        if "sync" in state:
            await state.pop("sync").api.aclose()

    @kopf.on.resume(GROUP, VERSION, ALERT_RULES, registry=registry, id="apply")
    @kopf.on.create(GROUP, VERSION, ALERT_RULES, registry=registry, id="apply")
    @kopf.on.update(GROUP, VERSION, ALERT_RULES, registry=registry, id="apply")
    async def apply_alert_rule(
        spec: kopf.Spec, name: str, namespace: str | None, meta: kopf.Meta, status: kopf.Status,
        patch: kopf.Patch, **_: Any,
    ) -> None:
        await sync().apply(
            lambda: (alert_rule_body(_namespace(namespace), name, spec),),
            status,
            meta.get("generation"),
            patch,
            lambda stored: {"ruleName": stored[0]["name"], "ruleVersion": stored[0]["version"]},
        )

    @kopf.on.delete(GROUP, VERSION, ALERT_RULES, registry=registry, id="delete")
    async def delete_alert_rule(
        name: str, namespace: str | None, status: kopf.Status, **_: Any
    ) -> None:
        await sync().delete(owned_rules(status, (rule_name(_namespace(namespace), name),)))

    @kopf.on.resume(GROUP, VERSION, MONITORED_HOSTS, registry=registry, id="apply")
    @kopf.on.create(GROUP, VERSION, MONITORED_HOSTS, registry=registry, id="apply")
    @kopf.on.update(GROUP, VERSION, MONITORED_HOSTS, registry=registry, id="apply")
    async def apply_monitored_host(
        spec: kopf.Spec, name: str, namespace: str | None, meta: kopf.Meta, status: kopf.Status,
        patch: kopf.Patch, **_: Any,
    ) -> None:
        await sync().apply(
            lambda: monitored_host_bodies(_namespace(namespace), name, spec),
            status,
            meta.get("generation"),
            patch,
            lambda stored: {"rules": [rule["name"] for rule in stored]},
        )

    @kopf.on.delete(GROUP, VERSION, MONITORED_HOSTS, registry=registry, id="delete")
    async def delete_monitored_host(
        spec: kopf.Spec, name: str, namespace: str | None, status: kopf.Status, **_: Any
    ) -> None:
        await sync().delete(
            owned_rules(status, _host_rule_names(_namespace(namespace), name, spec))
        )

