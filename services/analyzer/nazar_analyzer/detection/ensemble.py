"""Ensemble of the robust baseline and the isolation forest.

Both members judge every point; their raw scores (0.5 = edge of normal) are
combined as a weighted mean (``combine="mean"``: an alarm needs one member far
outside its band or both members near their edges) or as the maximum
(``combine="max"``: either member alone suffices).  The ensemble applies its
own alarm gate to the combined score; the members' own alarm decisions are
ignored.  The gate raises an alarm for a combined score >= ``threshold``, or
for sustained moderate evidence: a score >= ``sustain_threshold`` on this point
and on ``sustain_count`` of the last ``sustain_window`` points (a run rule, as
in statistical process control: several points close to the edge are as
telling as one point beyond it); after an alarm, alarms are suppressed for
``refractory_s`` (with ``refractory_extends``, for ``refractory_s`` after the
last alarm-worthy point: one alarm per incident).  Points whose combined score
is >= ``quarantine_score`` open a quarantine episode in both members at once
(the members' own ``quarantine_score`` is not used), so neither learns the
anomaly while it lasts (see :class:`~.base.Quarantine`).  The expected band reported is the
baseline's.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .base import ALARM_SCORE, AlarmGate, DetectionResult, StateDict
from .baseline import BaselineConfig, BaselineDetector
from .forest import ForestConfig, IsolationForestDetector


class EnsembleConfig(BaseModel):
    """Settings of :class:`EnsembleDetector`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    baseline: BaselineConfig = Field(default_factory=lambda: BaselineConfig(margin=0.15))
    forest: ForestConfig = Field(default_factory=ForestConfig)
    baseline_weight: float = 0.7
    combine: Literal["mean", "max"] = "mean"
    threshold: float = ALARM_SCORE
    alarm_window: int = 1
    alarm_fraction: float = 1.0
    refractory_s: float = 6 * 3600.0
    refractory_extends: bool = True
    sustain_threshold: float = 0.4
    sustain_window: int = 5
    sustain_count: int = 3
    quarantine_score: float = ALARM_SCORE

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EnsembleConfig:
        """Settings from a dict; a member's settings override that member's
        defaults (the baseline's margin 0.15 stays unless given)."""
        base = cls()
        merged = {
            **d,
            "baseline": {**base.baseline.to_dict(), **d.get("baseline", {})},
            "forest": {**base.forest.to_dict(), **d.get("forest", {})},
        }
        return cls.model_validate(merged)


class EnsembleDetector:
    """Baseline + isolation forest, one combined score and one alarm gate."""

    name = "ensemble"

    def __init__(self, config: EnsembleConfig | None = None) -> None:
        self.config = cfg = config or EnsembleConfig()
        self.baseline = BaselineDetector(cfg.baseline)
        self.forest = IsolationForestDetector(cfg.forest)
        self._gate = AlarmGate(
            cfg.threshold,
            cfg.alarm_window,
            cfg.alarm_fraction,
            cfg.refractory_s,
            cfg.sustain_threshold,
            cfg.sustain_window,
            cfg.sustain_count,
            cfg.refractory_extends,
        )

    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    def update(self, ts: float, value: float) -> DetectionResult:
        cfg = self.config
        b = self.baseline.judge(ts, value)
        f = self.forest.judge(ts, value)
        if b.learning:
            self.baseline.admit(False)
            self.forest.admit(False)
            self._gate.step(ts, 0.0)
            return b
        fr = 0.0 if f.learning else f.raw_score
        if cfg.combine == "max":
            raw = max(b.raw_score, fr)
        else:
            w = cfg.baseline_weight
            raw = w * b.raw_score + (1.0 - w) * fr
        # one verdict, one quarantine episode for both members
        suspect = raw >= cfg.quarantine_score
        self.baseline.admit(suspect)
        self.forest.admit(suspect)
        alarm = self._gate.step(ts, raw)
        score = self._gate.reported_score(raw, alarm)
        head = b.explanation.rsplit("; score", 1)[0]
        text = f"{head}; score {score:.2f} (baseline {b.raw_score:.2f}, forest {fr:.2f})"
        if raw >= cfg.threshold and not alarm:
            text += " (alarm suppressed: persistence/refractory)"
        elif alarm and raw < cfg.threshold:
            text += (
                f" (sustained: {cfg.sustain_count} of the last {cfg.sustain_window} points"
                f" scored >= {cfg.sustain_threshold:.2f})"
            )
        return DetectionResult(
            ts,
            b.value,
            score,
            alarm,
            b.expected_low,
            b.expected_high,
            b.expected_centre,
            text,
            raw,
            False,
        )

    def state_dict(self) -> StateDict:
        return {
            "type": self.name,
            "config": self.config.to_dict(),
            "baseline": self.baseline.state_dict(),
            "forest": self.forest.state_dict(),
            "gate": self._gate.state_dict(),
        }

    def load_state(self, state: StateDict) -> None:
        self.__init__(EnsembleConfig.from_dict(state["config"]))  # type: ignore[misc]
        self.baseline.load_state(state["baseline"])
        self.forest.load_state(state["forest"])
        self._gate.load_state(state["gate"])
