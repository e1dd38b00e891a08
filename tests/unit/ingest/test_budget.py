"""Cardinality budget decisions and the batch operations they use (pure)."""

from __future__ import annotations

import time

import orjson

from nazar_common.db.samples import SeriesKey, canonical_labels
from nazar_ingest.budget import GLOBAL, PER_HOST, SeriesBudget
from nazar_ingest.samples import Limits, NormalizedBatch, parse_json


def key(host: str, i: int, metric: str = "m") -> SeriesKey:
    return SeriesKey(metric, host, canonical_labels({"id": str(i)}))


def test_choose_fills_each_host_in_request_order() -> None:
    budget = SeriesBudget(per_host=3, total=0)
    new = [key("a", 1), key("b", 1), key("a", 2), key("a", 3), key("a", 4), key("b", 2)]
    decision = budget.choose(new, {"a": 1, "b": 0})
    assert decision.admit == [key("a", 1), key("b", 1), key("a", 2), key("b", 2)]
    assert decision.refused == {key("a", 3): PER_HOST, key("a", 4): PER_HOST}
    assert decision.counts == {"a": 3, "b": 2}
    budget.settle(decision, created=4)
    assert budget.full("a") and not budget.full("b")
    assert budget.known_refused(key("a", 3)) == PER_HOST
    assert budget.known_refused(key("a", 9)) is None  # never looked up: may exist


def test_global_limit_and_its_recovery() -> None:
    budget = SeriesBudget(per_host=0, total=10)
    budget.counted(8)
    decision = budget.choose([key("a", 1), key("b", 1), key("c", 1)], {})
    assert decision.admit == [key("a", 1), key("b", 1)]
    assert decision.refused == {key("c", 1): GLOBAL}
    budget.settle(decision, created=2)
    assert budget.total_count == 10 and budget.known_refused(key("c", 1)) == GLOBAL
    budget.counted(7)  # e.g. counted again after series were removed
    assert budget.known_refused(key("c", 1)) is None


def test_no_limits_admit_everything() -> None:
    budget = SeriesBudget(0, 0)
    assert not budget.enabled
    decision = budget.choose([key("a", i) for i in range(100)], {"a": 10**9})
    assert len(decision.admit) == 100 and not decision.refused


def test_full_hosts_series_are_frozen_within_a_bound() -> None:
    budget = SeriesBudget(per_host=2, total=0)
    budget.settle(budget.choose([key("a", 1), key("a", 2)], {}), created=2)
    assert budget.to_freeze() == ["a"]
    budget.freeze("a", [(key("a", 1), 11), (key("a", 2), 12)])
    assert budget.frozen("a") == {key("a", 1): 11, key("a", 2): 12}
    assert budget.to_freeze() == [] and budget.frozen("b") is None


def test_rejection_names_the_limit_and_hosts() -> None:
    budget = SeriesBudget(per_host=5, total=100)
    refused = {key("a", 1): PER_HOST, key("a", 2): PER_HOST, key("b", 1): GLOBAL}
    rejection = budget.refuse(refused, samples=7, keys=refused)
    assert (rejection.samples, rejection.series, rejection.limit) == (7, 3, PER_HOST)
    assert rejection.hosts == ["a", "b"] and rejection.by_limit == {PER_HOST: 2, GLOBAL: 1}
    text = budget.describe(rejection, accepted=4)
    assert "limit of 5 series per host (NAZAR_SERIES_LIMIT_PER_HOST)" in text
    assert "7 sample(s) of 3 new series were rejected; the other 4" in text


def test_without_drops_the_refused_series_samples() -> None:
    a, b, c = key("h", 1), key("h", 2), key("g", 3)
    batch = NormalizedBatch([a, b, c], [0, 1, 2, 1, 0], [1.0, 2, 3, 4, 5], [10.0, 20, 30, 40, 50],
                            {"h": "{}", "g": "{}"}, "k")
    kept = batch.without({b, c})
    assert kept.keys == [a] and kept.series_index == [0, 0]
    assert (kept.times, kept.values) == ([1.0, 5], [10.0, 50])
    assert kept.hosts == {"h": "{}"} and kept.idempotency_key == "k"


def _body(ids: range, host: str = "fh-1") -> bytes:
    return orjson.dumps({"host": host, "labels": {"env": "p"}, "samples": [
        {"metric": "m", "value": 1.0, "timestamp": NOW, "labels": {"id": str(i)}} for i in ids]})


NOW = time.time()
LIMITS = Limits(max_samples=10_000, oldest=NOW - 60, newest=NOW + 60)


def test_fast_path_sets_aside_new_series_of_a_full_host() -> None:
    parse_json(_body(range(3)), LIMITS, NOW)  # learnt: ids 0..2
    existing = SeriesKey("m", "fh-1", canonical_labels({"env": "p", "id": "7"}))
    final = {existing: 70}
    batch = parse_json(_body(range(10)), LIMITS, NOW, lambda host: final)
    # ids 0..2 are learnt, 7 exists (unknown to this process), the rest are over budget
    assert sorted(orjson.loads(k.labels)["id"] for k in batch.keys) == ["0", "1", "2", "7"]
    assert len(batch) == 4 and sum(batch.over_budget.values()) == 6
    assert all(k.host == "fh-1" for k in batch.over_budget)
    # without a final set (host not full), the same request takes the general path
    plain = parse_json(_body(range(10)), LIMITS, NOW)
    assert len(plain) == 10 and not plain.over_budget
