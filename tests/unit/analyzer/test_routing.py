"""Routing of sample batches to (rule, series) pairs (Engine.pairs_of)."""

from __future__ import annotations

from nazar_analyzer.engine import Engine
from nazar_analyzer.rules import Rule
from nazar_analyzer.settings import AnalyzerSettings
from nazar_common.schemas.config import RuleSpec
from nazar_common.schemas.wire import SampleBatchV1, SeriesRef


def _engine() -> Engine:
    specs = [
        {"name": "cpu-high", "metric": "cpu", "params": {"kind": "threshold", "value": 90}},
        {"name": "cpu-crit", "metric": "cpu", "params": {"kind": "threshold", "value": 99}},
        {"name": "mem-high", "metric": "mem", "params": {"kind": "threshold", "value": 95}},
    ]
    engine = Engine(AnalyzerSettings())
    engine.configure(
        [Rule(i + 1, s["name"], 1, RuleSpec.model_validate(s)) for i, s in enumerate(specs)],
        {"h2": {"env": "prod"}},
    )
    return engine


def _view(pairs: list) -> list[tuple]:
    return [(p.rule.id, p.subject, p.times, p.values, p.key) for p in pairs]


def _refs() -> list[SeriesRef]:
    return [
        SeriesRef(metric="cpu", host="h1", id=1),
        SeriesRef(metric="mem", host="h1", id=2),
        SeriesRef(metric="disk", host="h1", id=3),  # no rule
        SeriesRef(metric="cpu", host="h2", id=4),
        SeriesRef(metric="cpu", host="h3"),  # no id: skipped
    ]


def test_one_point_per_series_routes_like_the_grouped_path() -> None:
    refs = _refs()[:4]
    batch = SampleBatchV1(series=refs, series_index=[3, 0, 1, 2], times=[10.0, 10.0, 10.0, 10.0],
                          values=[1.0, 2.0, 3.0, 4.0], hosts={"h1": {"env": "dev"}})
    engine = _engine()
    fast = _view(engine.pairs_of(batch))
    assert engine._pairs_of_distinct(batch) is not None
    # the same batch through the general path (two batches: never the fast one)
    empty = SampleBatchV1(series=[], series_index=[], times=[], values=[])
    grouped = _view(_engine().pairs_of(batch, empty))
    assert fast == grouped
    assert [(rule, s.series_id, s.host_labels, v) for rule, s, _, v, _ in fast] == [
        (1, 4, (("env", "prod"),), [1.0]),
        (2, 4, (("env", "prod"),), [1.0]),
        (1, 1, (("env", "dev"),), [2.0]),
        (2, 1, (("env", "dev"),), [2.0]),
        (3, 2, (("env", "dev"),), [3.0]),
    ]


def test_several_points_of_a_series_are_grouped_in_time_order() -> None:
    refs = _refs()
    batch = SampleBatchV1(series=refs, series_index=[0, 4, 0, 1, 0],
                          times=[20.0, 5.0, 10.0, 10.0, 30.0], values=[2.0, 9.0, 1.0, 5.0, 3.0])
    engine = _engine()
    assert engine._pairs_of_distinct(batch) is None
    view = _view(engine.pairs_of(batch))
    assert [(rule, s.series_id, t, v) for rule, s, t, v, _ in view] == [
        (1, 1, [10.0, 20.0, 30.0], [1.0, 2.0, 3.0]),
        (2, 1, [10.0, 20.0, 30.0], [1.0, 2.0, 3.0]),
        (3, 2, [10.0], [5.0]),
    ]
