"""Rules as the analyzer evaluates them: parsed specs and subject matching (pure)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nazar_common.schemas.config import RuleSpec

log = logging.getLogger(__name__)

#: Rule kinds evaluated by periodic sweeps rather than on each sample batch.
PERIODIC_KINDS = ("absence", "forecast", "burn_rate")


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    name: str
    version: int
    spec: RuleSpec
    #: ``spec.params.kind`` (read for every sample: kept, not recomputed)
    kind: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", str(self.spec.params.kind))

    @property
    def sample_driven(self) -> bool:
        return self.kind not in PERIODIC_KINDS

    def matches_host(self, host: str, host_labels: Mapping[str, str]) -> bool:
        sel = self.spec.selector
        if sel.hosts and host not in sel.hosts:
            return False
        return all(host_labels.get(k) == v for k, v in sel.match_labels.items())

    def matches_series(
        self, metric: str, host: str, labels: Mapping[str, str], host_labels: Mapping[str, str]
    ) -> bool:
        if self.spec.metric != metric:
            return False
        if any(labels.get(k) != v for k, v in self.spec.match_series_labels.items()):
            return False
        return self.matches_host(host, host_labels)


def series_subject(series_id: int) -> str:
    return f"s:{series_id}"


def host_subject(host: str) -> str:
    return f"h:{host}"


def fingerprint(rule_name: str, subject: str) -> str:
    return hashlib.sha256(f"{rule_name}\x00{subject}".encode()).hexdigest()[:32]


def parse_rule(row: Mapping[str, Any]) -> Rule | None:
    """A rule from its database row, or None (logged) if the stored spec is invalid."""
    try:
        spec = RuleSpec.model_validate(row["spec"])
    except ValueError as exc:
        log.error("stored rule is invalid; ignored", extra={"rule": row["name"], "error": str(exc)})
        return None
    return Rule(int(row["id"]), str(row["name"]), int(row["version"]), spec)


@dataclass
class RuleSet:
    """The enabled rules, indexed for the sample path."""

    rules: dict[int, Rule] = field(default_factory=dict)
    generation: int = 0

    def __post_init__(self) -> None:
        self._by_metric: dict[str, list[Rule]] = {}
        for rule in self.rules.values():
            if rule.sample_driven and rule.spec.metric:
                self._by_metric.setdefault(rule.spec.metric, []).append(rule)
        self._match_cache: dict[tuple[int, str], list[Rule]] = {}

    @classmethod
    def build(cls, rules: Iterable[Rule], generation: int = 0) -> RuleSet:
        return cls({r.id: r for r in rules if r.spec.enabled}, generation)

    @property
    def absence_rules(self) -> list[Rule]:
        return [r for r in self.rules.values() if r.kind == "absence"]

    @property
    def burn_rate_rules(self) -> list[Rule]:
        return [r for r in self.rules.values() if r.kind == "burn_rate"]

    def has_metric(self, metric: str) -> bool:
        return metric in self._by_metric

    def for_series(
        self,
        series_id: int,
        metric: str,
        host: str,
        labels: Mapping[str, str],
        host_labels: Mapping[str, str],
    ) -> list[Rule]:
        """Sample-driven rules that apply to a series (cached per series and host labels)."""
        candidates = self._by_metric.get(metric)
        if not candidates:
            return []
        key = (series_id, repr(sorted(host_labels.items())))
        hit = self._match_cache.get(key)
        if hit is None:
            hit = [r for r in candidates if r.matches_series(metric, host, labels, host_labels)]
            if len(self._match_cache) > 1_000_000:
                self._match_cache.clear()
            self._match_cache[key] = hit
        return hit
