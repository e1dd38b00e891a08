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

from nazar_common.errors import ConflictError, InvalidInputError, NazarError, TransientError
from nazar_common.messaging.topology import analyzer_partitions
from nazar_operator.kube import Peering
from nazar_operator.nazar_api import NazarApi
from nazar_operator.queue import QueueDepth
from nazar_operator.reconcile import (
    MONITORED_HOST,
    REASON_APPLIED,
    REASON_CONFLICT,
    REASON_DELETE_FAILED,
    REASON_DRIFT,
    REASON_FAILED,
    REASON_INVALID,
    REASON_UNAVAILABLE,
    Outcome,
    RuleBody,
    alert_rule_body,
    drifted,
    failed_status,
    monitored_host_bodies,
    owned_rules,
    plain,
    rule_name,
    status_of,
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
from nazar_operator.scaler import Connect, Leader, Scaler
from nazar_operator.scaling import ScalingPolicy, is_leader
from nazar_operator.settings import OperatorSettings

log = logging.getLogger(__name__)

def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _set_status(patch: kopf.Patch, status: Mapping[str, Any]) -> None:
    for key, value in status.items():
        patch.status[key] = value


def _drop_unchanged(patch: kopf.Patch, status: Mapping[str, Any]) -> None:
    """Leave out of the patch what the status already says: a resync that finds
    everything in order writes nothing (no new resourceVersion, no watch event)."""
    written = patch.get("status")
    if not isinstance(written, dict):
        return
    for key in [k for k, v in written.items() if plain(status.get(k)) == plain(v)]:
        del written[key]
    if not written:
        del patch["status"]


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
    """Applies the desired rules of one resource and reports the outcome in its status.

    Every rule is put and deleted with the resource's uid as its owner: a
    rule of the same name that another resource owns, or that was made by
    hand, is left alone and named in the ``Conflict`` condition. The rules
    are recorded in the status (``rules``, ``ruleVersions``) as they are
    created, so a sync that fails halfway still knows what to delete.
    """

    def __init__(self, api: NazarApi, retry_delay: float) -> None:
        self.api = api
        self.retry_delay = retry_delay

    async def apply(
        self,
        desired: Callable[[], Sequence[RuleBody]],
        status: Mapping[str, Any],
        generation: int | None,
        uid: str | None,
        patch: kopf.Patch,
        fields: Callable[[list[dict[str, Any]]], dict[str, Any]],
        resource: kopf.Body | None = None,
    ) -> None:
        """Put the desired rules, delete the stale ones, write the status. A
        conflict and a reverted hand edit are also posted as Kubernetes
        events on ``resource`` (``kubectl describe`` shows them)."""
        previous = status.get("conditions")
        recorded = dict(status.get("ruleVersions") or {})
        in_sync = generation is not None and status.get("observedGeneration") == generation
        versions = {name: recorded.get(name, 0) for name in owned_rules(status, ())}
        conflicts: list[str] = []
        reverted: list[str] = []
        stored: list[dict[str, Any]] = []

        def record() -> None:
            patch.status["rules"] = sorted(versions)
            patch.status["ruleVersions"] = dict(versions)

        try:
            plan = sync_plan(desired(), versions)
            for body in plan.put:
                try:
                    rule, created = await self.api.put_rule(body.name, body.body, uid)
                except ConflictError as exc:
                    conflicts.append(exc.detail)
                    versions.pop(body.name, None)
                    continue
                versions[body.name] = int(rule["version"])
                stored.append(rule)
                record()
                if drifted(recorded, body.name, int(rule["version"]), created, in_sync):
                    reverted.append(body.name)
            for name in plan.delete:
                with contextlib.suppress(ConflictError):  # not ours (any more): left alone
                    await self.api.delete_rule(name, uid)
                versions.pop(name, None)
                record()
        except NazarError as exc:
            record()
            self._fail(exc, status, generation, patch)
        record()
        if stored:
            _set_status(patch, fields(stored))
        if conflicts:
            outcome = Outcome(False, REASON_CONFLICT, "; ".join(conflicts),
                              conflict="; ".join(conflicts))
            if resource is not None and previous_reason(status) != REASON_CONFLICT:
                kopf.warn(resource, reason=REASON_CONFLICT, message=outcome.conflict)
        elif reverted:
            log.warning("rules changed through the API were put back to their resource's spec",
                        extra={"rules": reverted})
            outcome = Outcome(True, REASON_DRIFT,
                              "changed outside Kubernetes, put back: " + ", ".join(reverted))
            if resource is not None:
                kopf.warn(resource, reason=REASON_DRIFT, message=outcome.message)
        else:
            outcome = Outcome(True, REASON_APPLIED,
                              "applied as " + ", ".join(r["name"] for r in stored))
        _set_status(patch, status_of(outcome, generation, previous, _now()))
        _drop_unchanged(patch, status)

    async def delete(
        self,
        names: Sequence[str],
        uid: str | None,
        status: Mapping[str, Any],
        generation: int | None,
        patch: kopf.Patch,
    ) -> None:
        """Delete the resource's rules; a failure keeps the finalizer (retried)."""
        try:
            for name in names:
                try:
                    await self.api.delete_rule(name, uid)
                except ConflictError as exc:  # not ours: nothing of this resource to delete
                    log.info("rule left alone: not owned", extra={"rule": name,
                                                                  "error": exc.detail})
        except NazarError as exc:
            message = f"rules not deleted yet, retrying: {exc.detail}"
            _set_status(
                patch,
                status_of(Outcome(False, REASON_DELETE_FAILED, message), generation,
                          status.get("conditions"), _now()),
            )
            delay = exc.retry_after if isinstance(exc, TransientError) else None
            raise kopf.TemporaryError(message, delay=delay or self.retry_delay) from exc

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

    async def refresh_firing(self, status: Mapping[str, Any], patch: kopf.Patch) -> None:
        """Write how many alerts of the resource's rule fire now and when it last fired."""
        rule = status.get("ruleName")
        if not rule:
            return
        try:
            count, last = await self.api.firing(str(rule))
        except NazarError as exc:
            log.info("firing alerts not read", extra={"rule": rule, "error": exc.detail})
            return
        if status.get("firing") != count:
            patch.status["firing"] = count
        if last and status.get("lastFiredAt") != last:
            patch.status["lastFiredAt"] = last


def previous_reason(status: Mapping[str, Any]) -> str | None:
    """The reason of the resource's Ready condition as last written."""
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Ready":
            return str(cond.get("reason"))
    return None


def _namespace(namespace: str | None) -> str:
    if not namespace:  # the resources are namespaced: never the case
        raise kopf.PermanentError("a Nazar resource without a namespace")
    return namespace


def _host_rule_names(namespace: str, name: str, spec: Mapping[str, Any]) -> list[str]:
    try:
        return [body.name for body in monitored_host_bodies(namespace, name, spec)]
    except InvalidInputError:
        return [rule_name(namespace, name, kind=MONITORED_HOST)]


def register(
    registry: kopf.OperatorRegistry,
    settings: OperatorSettings,
    connect: Connect | None = None,
    identity: str | None = None,
) -> None:
    """Register every handler on ``registry``.

    ``connect`` gives the scaler its Kubernetes credentials (default: the
    service account or kubeconfig, as kopf's own login). ``identity`` is this
    replica's name in the peering object (as given to kopf): with it the
    scaler only acts while this replica is the elected one.
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
        settings.peering.lifetime = nazar.operator_peering_lifetime
        login: Connect = connect or functools.partial(cluster_login, settings=settings)
        leader: Leader | None = None
        if not settings.peering.standalone and settings.peering.name:
            info = await login()
            scopes: list[str | None] = (
                [None] if settings.peering.clusterwide else list(nazar.operator_namespaces)
            )
            peering, priority = settings.peering.name, settings.peering.priority

            async def leading() -> bool:
                peers = await Peering(await login(), peering, scopes[0]).peers()
                return is_leader(peers, str(identity), priority, datetime.now(UTC))

            leader = leading if identity is not None else None
            for scope in scopes:
                if await Peering(info, settings.peering.name, scope).ensure():
                    log.info("peering object created",
                             extra={"peering": settings.peering.name, "namespace": scope})
        api = NazarApi(
            nazar.api_url, nazar.api_key.get_secret_value(), timeout=nazar.api_timeout
        )
        state["sync"] = RuleSync(api, nazar.operator_retry_delay)
        if nazar.scaler_enabled:
            scaler = Scaler(
                QueueDepth(
                    nazar.amqp_url.get_secret_value(),
                    [q.name for q in analyzer_partitions(nazar.analyzer_partitions)],
                ),
                login,
                nazar.scaler_namespace,
                nazar.scaler_deployment,
                ScalingPolicy(
                    min_replicas=nazar.scaler_min_replicas,
                    max_replicas=nazar.scaler_max_replicas,
                    messages_per_replica=nazar.scaler_messages_per_replica,
                    up_cooldown=nazar.scaler_up_cooldown,
                    down_cooldown=nazar.scaler_down_cooldown,
                    partitions=nazar.analyzer_partitions,
                ),
                leader=leader,
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

    async def apply_alert_rule(
        spec: kopf.Spec, name: str, namespace: str | None, meta: kopf.Meta, status: kopf.Status,
        patch: kopf.Patch, body: kopf.Body, **_: Any,
    ) -> None:
        if meta.get("deletionTimestamp"):  # the delete handler's turn: never recreate
            return
        await sync().apply(
            lambda: (alert_rule_body(_namespace(namespace), name, spec),),
            status,
            meta.get("generation"),
            meta.get("uid"),
            patch,
            lambda stored: {"ruleName": stored[0]["name"], "ruleVersion": stored[0]["version"]},
            body,
        )

    async def apply_monitored_host(
        spec: kopf.Spec, name: str, namespace: str | None, meta: kopf.Meta, status: kopf.Status,
        patch: kopf.Patch, body: kopf.Body, **_: Any,
    ) -> None:
        if meta.get("deletionTimestamp"):
            return
        await sync().apply(
            lambda: monitored_host_bodies(_namespace(namespace), name, spec),
            status,
            meta.get("generation"),
            meta.get("uid"),
            patch,
            lambda stored: {},
            body,
        )

    for plural, apply in ((ALERT_RULES, apply_alert_rule), (MONITORED_HOSTS, apply_monitored_host)):
        for on in (kopf.on.resume, kopf.on.create, kopf.on.update):
            on(GROUP, VERSION, plural, registry=registry, id="apply")(apply)
        # Puts hand edits back, and retries rules another owner held.
        kopf.timer(
            GROUP, VERSION, plural, registry=registry, id="resync",
            interval=nazar.operator_resync_interval,
            initial_delay=nazar.operator_resync_interval,
        )(apply)

    @kopf.timer(
        GROUP, VERSION, ALERT_RULES, registry=registry, id="firing",
        interval=nazar.operator_status_interval, initial_delay=1.0,
    )
    async def firing_alert_rule(status: kopf.Status, patch: kopf.Patch, **_: Any) -> None:
        await sync().refresh_firing(status, patch)

    @kopf.on.delete(GROUP, VERSION, ALERT_RULES, registry=registry, id="delete")
    async def delete_alert_rule(
        name: str, namespace: str | None, meta: kopf.Meta, status: kopf.Status,
        patch: kopf.Patch, **_: Any,
    ) -> None:
        await sync().delete(
            owned_rules(status, (rule_name(_namespace(namespace), name),)),
            meta.get("uid"), status, meta.get("generation"), patch,
        )

    @kopf.on.delete(GROUP, VERSION, MONITORED_HOSTS, registry=registry, id="delete")
    async def delete_monitored_host(
        spec: kopf.Spec, name: str, namespace: str | None, meta: kopf.Meta, status: kopf.Status,
        patch: kopf.Patch, **_: Any,
    ) -> None:
        await sync().delete(
            owned_rules(status, _host_rule_names(_namespace(namespace), name, spec)),
            meta.get("uid"), status, meta.get("generation"), patch,
        )
