"""Annotation templates, rule matching and the detector adapter."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from nazar_analyzer import detectors, templates
from nazar_analyzer.evaluators import estimate_interval, new_detector_evaluator
from nazar_analyzer.rules import Rule, RuleSet, parse_rule
from nazar_common.schemas.config import WRITE, AnomalyParams, BaselineParams, RuleSpec


def test_render_templates() -> None:
    out = templates.render(
        {"summary": "{{ host }}: {{ value | round(1) }} > {{ expected.high }}"},
        {"host": "web-1", "value": 97.345, "expected": {"high": 90}},
    )
    assert out == {"summary": "web-1: 97.3 > 90"}


def test_sandbox_blocks_internals() -> None:
    out = templates.render({"x": "{{ value.__class__.__mro__ }}"}, {"value": 1})
    assert "template error" in out["x"] or "object" not in out["x"]


def _rule(rid: int, **spec: object) -> Rule:
    return Rule(rid, str(spec["name"]), 1, RuleSpec.model_validate(spec))


def test_rule_matching_by_metric_labels_and_hosts() -> None:
    r1 = _rule(1, name="a", metric="cpu", params={"kind": "threshold", "value": 1},
               selector={"match_labels": {"env": "prod"}})
    r2 = _rule(2, name="b", metric="cpu", params={"kind": "threshold", "value": 1},
               match_series_labels={"core": "0"}, selector={"hosts": ["h1"]})
    r3 = _rule(3, name="c", metric="mem", params={"kind": "threshold", "value": 1})
    off = _rule(4, name="d", metric="cpu", enabled=False, params={"kind": "threshold", "value": 1})
    rs = RuleSet.build([r1, r2, r3, off])
    assert [r.name for r in rs.for_series(10, "cpu", "h1", {"core": "0"}, {"env": "prod"})] == [
        "a", "b"]
    assert [r.name for r in rs.for_series(11, "cpu", "h2", {"core": "0"}, {"env": "dev"})] == []
    assert [r.name for r in rs.for_series(12, "cpu", "h1", {"core": "1"}, {})] == []
    assert not rs.has_metric("disk")


def test_detector_config_converts_seconds_to_points() -> None:
    name, cfg = detectors.detector_config(
        BaselineParams(window=3600, min_history=600, band=5), 10.0, detectors.Limits()
    )
    assert name == "composite"
    assert cfg["record_halflife"] == 360 and cfg["min_history"] == 60 and cfg["spike_floor"] == 5
    assert set(cfg["components"]) == set(detectors.BASELINE_COMPONENTS)
    name, cfg = detectors.detector_config(
        AnomalyParams(training_window=7200, recent_points=4, min_fraction=0.5), 10.0,
        detectors.Limits(max_points=500),
    )
    assert name == "composite"
    # the composite detector keeps no history: its records' half-life and its
    # learning period are the rule's seconds, not bounded by the points a
    # warm-up replays, and it is told the interval its time constants refer to
    assert cfg["record_halflife"] == 720 and cfg["min_history"] == 720 // 7
    assert cfg["interval_s"] == 10.0
    assert cfg["alarm_window"] == 4 and cfg["alarm_count"] == 2
    name, cfg = detectors.detector_config(
        AnomalyParams(algorithm="isolation_forest", training_window=7200, retrain_every=600,
                      recent_points=4), 10.0,
        detectors.Limits(max_points=500),
    )
    assert name == "isolation_forest"
    assert cfg["train_window"] == 500 and cfg["retrain_every"] == 60 and cfg["alarm_window"] == 4


def test_estimate_interval() -> None:
    assert estimate_interval([0, 10, 20, 30, 45], 60) == 10
    assert estimate_interval([0], 60) == 60


def test_baseline_evaluator_flags_spike_and_survives_snapshot() -> None:
    rule = _rule(1, name="b", metric="lat",
                 params={"kind": "baseline", "window": 3000, "min_history": 300,
                         "seasonality": "none"})
    ev = new_detector_evaluator(rule, 7, 10.0, detectors.Limits())
    ev.warm([(i * 10.0, 100 + math.sin(i / 5)) for i in range(300)])
    clone = detectors.load(detectors.dump(ev.detector))
    normal = ev.observe(3000.0, 100.5)
    assert not normal.breach and normal.low is not None and normal.low < 100 < normal.high
    spike = ev.observe(3010.0, 400.0)
    assert spike.breach and spike.score is not None and spike.score >= 0.5
    assert "above" in (spike.explanation or "")
    assert any(c.startswith("level:") for c in spike.contributors)
    # the snapshot resumes exactly where the original was
    r1 = clone.update(3000.0, 100.5)
    assert not r1.is_anomaly
    assert r1.expected_high == normal.high
    assert clone.update(3010.0, 400.0).is_anomaly


def test_rules_stored_before_the_write_checks_still_load() -> None:
    """A rule the API accepted before it checked hysteresis and history still
    loads and is evaluated; only new writes are refused."""
    spec = {"name": "old", "metric": "m",
            "params": {"kind": "baseline", "min_history": 7200, "window": 3600}}
    rule = parse_rule({"id": 1, "name": "old", "version": 1, "spec": spec})
    assert rule is not None and rule.spec.params.kind == "baseline"
    with pytest.raises(ValidationError, match="must not exceed window"):
        RuleSpec.model_validate(spec, context=WRITE)
