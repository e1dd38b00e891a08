"""Pure reconciliation: custom resources in, rule bodies, plans and status out.

Nothing here does I/O or reads the clock: the handlers pass ``now`` in and
carry the results out through the adapters. Every function is idempotent —
the same resource always maps to the same rule names and bodies.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from nazar_common.errors import InvalidInputError
from nazar_common.schemas.config import NAME_PATTERN, WRITE, RuleSpec
from nazar_common.schemas.names import HOST_RE

NAME_RE = re.compile(NAME_PATTERN)
MAX_RULE_NAME = 63
DEFAULT_ABSENCE_TIMEOUT = 300.0

READY = "Ready"
SYNCED = "Synced"
CONFLICT = "Conflict"
REASON_APPLIED = "Applied"
REASON_DRIFT = "DriftReverted"
REASON_INVALID = "Invalid"
REASON_UNAVAILABLE = "ApiUnavailable"
REASON_FAILED = "Failed"
REASON_CONFLICT = "RuleOwnedElsewhere"
REASON_NO_CONFLICT = "NoConflict"
REASON_DELETE_FAILED = "DeleteFailed"

ALERT_RULE = "AlertRule"
MONITORED_HOST = "MonitoredHost"


@dataclass(frozen=True)
class RuleBody:
    """One rule as the Nazar API stores it: ``PUT /api/v1/rules/{name}`` with ``body``."""

    name: str
    body: dict[str, Any]


@dataclass(frozen=True)
class SyncPlan:
    """What to do in the API: create or replace ``put``, then delete ``delete``."""

    put: tuple[RuleBody, ...]
    delete: tuple[str, ...] = field(default=())


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def rule_name(namespace: str, name: str, suffix: str = "", kind: str = ALERT_RULE) -> str:
    """The API rule name of a resource: ``<namespace>-<name>[-<suffix>]``, plus a
    short hash of the exact resource whenever that join could be ambiguous.

    Rule names are DNS labels, Kubernetes names may hold dots and be longer,
    and ``a-b/c`` and ``a/b-c`` join to the same text. The plain join is kept
    only when it is unambiguous: an ``AlertRule`` in a namespace without a
    dash (the first dash then separates), whose name is already a DNS label
    and which fits. Every other resource — ``team-a/x``, ``mon/cpu.high``,
    every ``MonitoredHost`` rule — ends with 6 hex digits of a hash of its
    kind, namespace, name and suffix, so ``cpu.high`` and ``cpu-high`` map to
    different rules and each resource to one rule, always the same.
    """
    full = "-".join(part for part in (_slug(namespace), _slug(name), _slug(suffix)) if part)
    plain = (
        kind == ALERT_RULE
        and not suffix
        and "-" not in namespace
        and _slug(name) == name
        and len(full) <= MAX_RULE_NAME
    )
    candidate = full
    if not plain:
        digest = hashlib.sha256(f"{kind}/{namespace}/{name}/{suffix}".encode()).hexdigest()[:6]
        candidate = f"{full[: MAX_RULE_NAME - 7].rstrip('-')}-{digest}"
    if not NAME_RE.match(candidate):
        raise InvalidInputError(
            f"cannot map {namespace}/{name} to a rule name: {candidate!r} does not match "
            f"{NAME_PATTERN}"
        )
    return candidate


def plain(value: Any) -> Any:
    """A deep copy made of plain dicts and lists (kopf hands out mapping views)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def validate_rule(body: Mapping[str, Any]) -> RuleSpec:
    """Validate a rule body as the API will; errors become :class:`InvalidInputError`."""
    try:
        return RuleSpec.model_validate(body, context=WRITE)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}"
            for err in exc.errors()
        )
        raise InvalidInputError(f"invalid rule: {problems}") from exc


def alert_rule_body(namespace: str, name: str, spec: Mapping[str, Any]) -> RuleBody:
    """The API rule of an ``AlertRule``: its spec, named after the resource."""
    spec_ = plain(spec)
    if "name" in spec_:
        raise InvalidInputError("spec.name is not allowed: the rule is named after the resource")
    body = {"name": rule_name(namespace, name), **spec_}
    validate_rule(body)
    return RuleBody(body["name"], body)


def monitored_host_bodies(
    namespace: str, name: str, spec: Mapping[str, Any]
) -> tuple[RuleBody, ...]:
    """The absence rules of a ``MonitoredHost``: the host's, then one per expected metric.

    The host's labels become alert labels (with ``host``), so notification
    channels can route on them.
    """
    hostname = str(spec.get("hostname", ""))
    if not HOST_RE.match(hostname):
        raise InvalidInputError(f"spec.hostname {hostname!r} is not a valid host name")
    labels = {str(k): str(v) for k, v in plain(spec.get("labels") or {}).items()}
    common: dict[str, Any] = {
        "enabled": bool(spec.get("enabled", True)),
        "selector": {"hosts": [hostname]},
        "params": {
            "kind": "absence",
            "after": float(spec.get("absenceTimeout", DEFAULT_ABSENCE_TIMEOUT)),
        },
        "severity": spec.get("severity", "warning"),
        "labels": {**labels, "host": hostname},
        "annotations": {"source": f"kubernetes:{namespace}/{name}"},
        "channels": list(spec.get("channels") or []),
    }
    bodies = [
        {
            "name": rule_name(namespace, name, kind=MONITORED_HOST),
            "description": f"{hostname} stopped reporting",
            **common,
        }
    ]
    metrics = list(spec.get("expectedMetrics") or [])
    if len(set(metrics)) != len(metrics):
        raise InvalidInputError("spec.expectedMetrics lists a metric twice")
    for metric in metrics:
        bodies.append(
            {
                "name": rule_name(namespace, name, str(metric), kind=MONITORED_HOST),
                "description": f"{hostname} stopped sending {metric}",
                "metric": metric,
                **common,
            }
        )
    for body in bodies:
        validate_rule(body)
    return tuple(RuleBody(b["name"], b) for b in bodies)


def sync_plan(desired: Sequence[RuleBody], previous: Iterable[str]) -> SyncPlan:
    """Put every desired rule; delete the previously owned ones no longer desired."""
    wanted = {body.name for body in desired}
    stale = sorted(set(previous) - wanted)
    return SyncPlan(put=tuple(desired), delete=tuple(stale))


def owned_rules(status: Mapping[str, Any], fallback: Iterable[str]) -> tuple[str, ...]:
    """Rule names a resource owns: those its status records, and ``fallback``."""
    names = set(fallback)
    if status.get("ruleName"):
        names.add(str(status["ruleName"]))
    names.update(str(n) for n in status.get("rules") or ())
    names.update(str(n) for n in status.get("ruleVersions") or {})
    return tuple(sorted(names))


def drifted(
    recorded: Mapping[str, Any], name: str, version: int, created: bool, in_sync: bool
) -> bool:
    """Whether a rule put back to the resource's spec had been changed by hand.

    Only when the spec did not change since it was last applied
    (``in_sync``): the operator then recreated a rule it had applied, or the
    rule's version moved past the one it recorded.
    """
    if not in_sync or name not in recorded:
        return False
    return created or int(recorded[name]) != version


@dataclass(frozen=True)
class Outcome:
    """The result of one sync, as the three conditions show it."""

    ready: bool
    reason: str
    message: str
    conflict: str = ""  # why a rule was left alone (empty: no conflict)
    synced: bool | None = None  # None: as ready

    def conditions(
        self, previous: Sequence[Mapping[str, Any]] | None, generation: int | None, now: str
    ) -> list[dict[str, Any]]:
        synced = self.ready if self.synced is None else self.synced
        return [
            condition(previous, READY, self.ready, self.reason, self.message, now, generation),
            condition(previous, SYNCED, synced, self.reason, self.message, now, generation),
            condition(
                previous,
                CONFLICT,
                bool(self.conflict),
                REASON_CONFLICT if self.conflict else REASON_NO_CONFLICT,
                self.conflict or "every rule of this resource is owned by it",
                now,
                generation,
            ),
        ]


def condition(
    previous: Sequence[Mapping[str, Any]] | None,
    type_: str,
    status: bool,
    reason: str,
    message: str,
    now: str,
    generation: int | None = None,
) -> dict[str, Any]:
    """A condition; ``lastTransitionTime`` only moves when the status changes."""
    value = "True" if status else "False"
    since = now
    for old in previous or ():
        if old.get("type") == type_ and old.get("status") == value:
            since = str(old.get("lastTransitionTime") or now)
    out: dict[str, Any] = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
    }
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def status_of(
    outcome: Outcome,
    generation: int | None,
    previous: Sequence[Mapping[str, Any]] | None,
    now: str,
    **fields: Any,
) -> dict[str, Any]:
    """The status after a sync: ``fields`` (rule names and versions) and the conditions."""
    return {
        "observedGeneration": generation,
        **fields,
        "conditions": outcome.conditions(previous, generation, now),
    }


def ready_status(
    generation: int | None,
    previous: Sequence[Mapping[str, Any]] | None,
    now: str,
    message: str,
    **fields: Any,
) -> dict[str, Any]:
    """Status after a successful apply."""
    return status_of(Outcome(True, REASON_APPLIED, message), generation, previous, now, **fields)


def failed_status(
    generation: int | None,
    previous: Sequence[Mapping[str, Any]] | None,
    now: str,
    reason: str,
    message: str,
) -> dict[str, Any]:
    """Status after a failed apply (the last applied rule fields are left as they were)."""
    return status_of(Outcome(False, reason, message), generation, previous, now)
