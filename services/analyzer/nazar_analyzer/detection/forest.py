"""Isolation-forest anomaly detector (scikit-learn ``IsolationForest``).

Each point is described by a small feature vector built from bounded recent
state (all in the series' own units; an isolation forest does not care about
per-feature affine scaling):

* ``level``   the value itself,
* ``change``  the difference to the previous value,
* ``mean``    the mean of the last ``short_window`` values (persistent shifts),
* ``spread``  the standard deviation of the last ``short_window`` values,
* ``season``  the value minus the median of its time-of-day bin (0 until a
  daily profile has been learnt).

The forest is trained on the features of the last ``train_window`` points and
retrained every ``retrain_every`` points.  Its anomaly score (sklearn's
``score_samples`` convention, ~0.5 normal, -> 1 isolated) is calibrated
against the training points: the edge of normal is the training score at the
``edge_quantile`` (widened by ``margin``), and ``r^k / (1 + r^k)`` of the
relative distance above the training median gives a [0, 1] score that is 0.5
at the edge.  An alarm needs ``alarm_fraction`` of the last ``alarm_window``
points over the threshold, and is suppressed for ``refractory_s`` after
another alarm.

Points judged anomalous (raw score >= ``quarantine_score``) open a quarantine
episode (see :class:`~.base.Quarantine`): its points stay out of training,
calibration and the reported band until the series has been normal for
``release_after`` points, so the forest is not retrained on the anomaly it is
reporting.  An episode lasting ``rebaseline_fraction`` of ``train_window``
points is learnt as the new normal, and the forest is retrained at once.

Scoring one point through sklearn costs milliseconds, so the fitted trees are
flattened into numpy arrays and traversed for all trees at once (tens of
microseconds); the result is identical to ``IsolationForest.score_samples``.
The persisted state holds the exact training sample and seed, and the model
is refitted (deterministically) when the state is loaded.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict
from sklearn.ensemble import IsolationForest

from .base import (
    ALARM_SCORE,
    Admission,
    AlarmGate,
    DetectionResult,
    Direction,
    Quarantine,
    StateDict,
    TwoPhaseUpdate,
    explain,
    ignored_result,
    learning_result,
    quarantine_horizon,
    score_from_ratio,
)
from .seasonal import Seasonality, SeasonalProfile

N_FEATURES = 5
FEATURE_NAMES = ("level", "change", "mean", "spread", "season")


class ForestConfig(BaseModel):
    """Settings of :class:`IsolationForestDetector` (counts are in points)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    train_window: int = 2016
    min_history: int = 288
    retrain_every: int = 288
    n_estimators: int = 100
    max_samples: int = 256
    short_window: int = 12
    seasonality: Seasonality = Seasonality.DAILY
    edge_quantile: float = 0.995
    margin: float = 0.0
    steepness: float = 4.0
    direction: Direction = Direction.BOTH
    threshold: float = ALARM_SCORE
    alarm_window: int = 3
    alarm_fraction: float = 0.66
    refractory_s: float = 6 * 3600.0
    refractory_extends: bool = True
    seed: int = 0
    quarantine_score: float = ALARM_SCORE
    release_after: int = 3
    rebaseline_fraction: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ForestConfig:
        """Settings from a dict; keys of other versions are ignored."""
        return cls.model_validate(d)


def average_path_length(n: np.ndarray) -> np.ndarray:
    """Expected path length of an unsuccessful BST search among ``n`` items."""
    n = np.asarray(n, dtype=float)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


class FlatForest:
    """All trees of a fitted ``IsolationForest`` as flat arrays, scored in one pass."""

    def __init__(self, model: IsolationForest) -> None:
        lefts, rights, feats, thrs, leafval, roots = [], [], [], [], [], []
        offset = 0
        depth_max = 0
        for tree, features in zip(model.estimators_, model.estimators_features_, strict=True):
            t = tree.tree_
            n_nodes = t.node_count
            left = t.children_left.astype(np.int64)
            right = t.children_right.astype(np.int64)
            depth = np.zeros(n_nodes, dtype=np.int64)
            for node in range(n_nodes):  # children always come after their parent
                if left[node] >= 0:
                    depth[left[node]] = depth[node] + 1
                    depth[right[node]] = depth[node] + 1
            depth_max = max(depth_max, int(depth.max()))
            leaf = left < 0
            feat = np.where(leaf, 0, np.asarray(features)[np.maximum(t.feature, 0)])
            roots.append(offset)
            lefts.append(np.where(leaf, np.arange(n_nodes) + offset, left + offset))
            rights.append(np.where(leaf, np.arange(n_nodes) + offset, right + offset))
            feats.append(feat)
            thrs.append(t.threshold.astype(float))
            leafval.append(depth + average_path_length(t.n_node_samples))
            offset += n_nodes
        self.left = np.concatenate(lefts)
        self.right = np.concatenate(rights)
        self.feature = np.concatenate(feats)
        self.threshold = np.concatenate(thrs)
        self.leaf_value = np.concatenate(leafval)
        self.roots = np.array(roots, dtype=np.int64)
        self.depth = depth_max
        self.norm = len(roots) * float(average_path_length(np.array([model.max_samples_]))[0])

    def score(self, x: np.ndarray) -> float:
        """``IsolationForest.score_samples`` of one sample, as a positive number."""
        xf = np.asarray(x, dtype=np.float32).astype(float)
        node = self.roots
        for _ in range(self.depth):
            go_left = xf[self.feature[node]] <= self.threshold[node]
            node = np.where(go_left, self.left[node], self.right[node])
        return float(2.0 ** (-self.leaf_value[node].sum() / self.norm))

    def score_many(self, xs: np.ndarray) -> np.ndarray:
        xf = np.asarray(xs, dtype=np.float32).astype(float)
        rows = np.arange(xf.shape[0])[:, None]
        node = np.broadcast_to(self.roots, (xf.shape[0], self.roots.size))
        for _ in range(self.depth):
            go_left = xf[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(go_left, self.left[node], self.right[node])
        result: np.ndarray = 2.0 ** (-self.leaf_value[node].sum(axis=1) / self.norm)
        return result


class IsolationForestDetector(TwoPhaseUpdate):
    """Streaming detector scoring feature vectors with a periodically retrained forest."""

    config: ForestConfig
    name = "isolation_forest"

    def __init__(self, config: ForestConfig | None = None) -> None:
        self.config = cfg = config or ForestConfig()
        if cfg.min_history < 16 or cfg.train_window < cfg.min_history:
            raise ValueError("need 16 <= min_history <= train_window")
        self._feats = np.zeros((cfg.train_window, N_FEATURES))
        self._values = np.zeros(cfg.train_window)
        self._next = 0
        self._size = 0
        self._recent: deque[float] = deque(maxlen=max(2, cfg.short_window))
        self._season = SeasonalProfile(cfg.seasonality)
        self._gate = AlarmGate(
            cfg.threshold,
            cfg.alarm_window,
            cfg.alarm_fraction,
            cfg.refractory_s,
            refractory_extends=cfg.refractory_extends,
        )
        # the quarantined points are always the newest `_quarantine.held` rows
        self._quarantine = Quarantine(
            min(
                quarantine_horizon(cfg.rebaseline_fraction, cfg.train_window, cfg.release_after),
                cfg.train_window - cfg.min_history,
            ),
            cfg.release_after,
        )
        self._pending: tuple[float, float, np.ndarray] | None = None
        self._since_train = 0
        self._n_trains = 0
        self._train_sample: np.ndarray | None = None
        self._forest: FlatForest | None = None
        self._calib = (0.5, 1.0)  # (median score, edge score)
        self._band = (math.nan, math.nan, math.nan)  # (low, high, centre)
        self._n = 0

    # -- interface ---------------------------------------------------------

    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    def judge(self, ts: float, value: float) -> DetectionResult:
        """First half of :meth:`update`: judge the point; :meth:`admit` must follow.

        An ensemble calls the two halves itself, so that its combined verdict
        decides which points all of its members hold back.
        """
        self._pending = None
        x = float(value)
        if not math.isfinite(x):
            return ignored_result(ts, x)
        prev = self._recent[-1] if self._recent else x
        self._recent.append(x)
        recent = np.fromiter(self._recent, dtype=float)
        season = x - self._season.offset(ts) if self._season.ready() else 0.0
        feat = np.array([x, x - prev, recent.mean(), recent.std(), season])
        self._pending = (ts, x, feat)
        return self._judge(ts, x, feat)

    def admit(self, suspect: bool) -> Admission:
        """Second half of :meth:`update`: store the judged point, held back or not."""
        if self._pending is None:  # not a finite value
            return Admission.ADMIT
        ts, x, feat = self._pending
        self._pending = None
        action = self._quarantine.step(suspect)
        if action is Admission.REBASELINE:
            self._since_train = self.config.retrain_every  # learn the new normal now
        self._feats[self._next] = feat
        self._values[self._next] = x
        self._next = (self._next + 1) % self.config.train_window
        self._size = min(self._size + 1, self.config.train_window)
        self._season.add(ts, x)
        self._n += 1
        self._since_train += 1
        if self._size - self._quarantine.held >= self.config.min_history and (
            self._forest is None or self._since_train >= self.config.retrain_every
        ):
            self._train()
        return action

    def state_dict(self) -> StateDict:
        return {
            "type": self.name,
            "config": self.config.to_dict(),
            "feats": self._feats.copy(),
            "values": self._values.copy(),
            "next": self._next,
            "size": self._size,
            "recent": list(self._recent),
            "season": self._season.state_dict(),
            "gate": self._gate.state_dict(),
            "quarantine": self._quarantine.state_dict(),
            "since_train": self._since_train,
            "n_trains": self._n_trains,
            "train_sample": self._train_sample,
            "calib": list(self._calib),
            "band": list(self._band),
            "n": self._n,
        }

    def load_state(self, state: StateDict) -> None:
        self.__init__(ForestConfig.from_dict(state["config"]))  # type: ignore[misc]
        self._feats = np.array(state["feats"], dtype=float)
        self._values = np.array(state["values"], dtype=float)
        self._next = int(state["next"])
        self._size = int(state["size"])
        self._recent.extend(float(v) for v in state["recent"])
        self._season.load_state(state["season"])
        self._gate.load_state(state["gate"])
        self._quarantine.load_state(state.get("quarantine"))
        self._since_train = int(state["since_train"])
        self._n_trains = int(state["n_trains"])
        sample = state.get("train_sample")
        if sample is not None:
            self._train_sample = np.array(sample, dtype=float)
            self._forest = self._fit(self._train_sample, self._n_trains - 1)
        med, edge = state["calib"]
        self._calib = (float(med), float(edge))
        low, high, centre = state["band"]
        self._band = (float(low), float(high), float(centre))
        self._n = int(state["n"])

    # -- internals ---------------------------------------------------------

    def _fit(self, sample: np.ndarray, train_no: int) -> FlatForest:
        cfg = self.config
        model = IsolationForest(
            n_estimators=cfg.n_estimators,
            max_samples=sample.shape[0],
            random_state=cfg.seed + train_no,
        )
        model.fit(sample)
        return FlatForest(model)

    def _admitted(self) -> tuple[np.ndarray, np.ndarray]:
        """Features and values of the stored points outside quarantine."""
        feats, vals = self._feats[: self._size], self._values[: self._size]
        held = self._quarantine.held
        if held == 0:
            return feats, vals
        keep = np.ones(self._size, dtype=bool)
        keep[(self._next - 1 - np.arange(held)) % self.config.train_window] = False
        return feats[keep], vals[keep]

    def _train(self) -> None:
        cfg = self.config
        feats, vals = self._admitted()
        n = feats.shape[0]
        rng = np.random.default_rng(cfg.seed + self._n_trains)
        k = min(cfg.max_samples, n)
        sample = feats[np.sort(rng.choice(n, size=k, replace=False))]
        self._forest = self._fit(sample, self._n_trains)
        self._train_sample = sample
        self._n_trains += 1
        self._since_train = 0
        scores = self._forest.score_many(feats)
        med = float(np.median(scores))
        edge = float(np.quantile(scores, cfg.edge_quantile))
        edge = edge + cfg.margin * (edge - med)
        self._calib = (med, max(edge, med + 1e-6))
        lo, centre, hi = np.quantile(vals, (0.005, 0.5, 0.995))
        self._band = (float(lo), float(hi), float(centre))

    def _judge(self, ts: float, x: float, feat: np.ndarray) -> DetectionResult:
        cfg = self.config
        low, high, centre = self._band
        if self._forest is None:
            self._gate.step(ts, 0.0)
            return learning_result(ts, x)
        s = self._forest.score(feat)
        med, edge = self._calib
        raw = score_from_ratio((s - med) / (edge - med), cfg.steepness)
        if (cfg.direction is Direction.ABOVE and feat[2] < centre) or (
            cfg.direction is Direction.BELOW and feat[2] > centre
        ):
            raw = 0.0
        alarm = self._gate.step(ts, raw)
        score = self._gate.reported_score(raw, alarm)
        text = explain(x, low, high, centre, score) + f" (isolation score {s:.3f}, edge {edge:.3f})"
        if raw >= cfg.threshold and not alarm:
            text += " (alarm suppressed: persistence/refractory)"
        return DetectionResult(ts, x, score, alarm, low, high, centre, text, raw, False)
