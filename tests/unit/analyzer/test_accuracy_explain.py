"""bench/accuracy.py --explain: what decided each alarm, how close a miss came."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

import accuracy
from nab_scoring import ScoredFile

STEP = 300.0
T0 = 1_600_000_000.0


def _series(rel: str, values: np.ndarray) -> accuracy.Series:
    epoch = T0 + STEP * np.arange(values.size)
    ts_text = [str(np.datetime64(int(t), "s")).replace("T", " ") for t in epoch]
    return accuracy.Series(rel, ts_text, [repr(float(v)) for v in values], epoch, values)


def test_alarms_name_their_statistic_and_misses_say_how_close_they_came() -> None:
    rng = np.random.default_rng(7)
    n = 3000
    values = 50.0 + rng.normal(0.0, 1.0, n)
    values[2000] += 40.0  # a spike, inside window 0
    values[2500:2520] += 0.5  # a shift far inside the noise, in window 1
    s = _series("cat/file.csv", values)
    runs, _, _ = accuracy.run_bank([s], dict(accuracy.BENCH_SETTINGS))
    (run,) = runs
    ts = np.array([np.datetime64(accuracy.parse_ts(t), "us") for t in s.ts_text])
    windows = [(ts[1950], ts[2050]), (ts[2450], ts[2550])]
    lines = accuracy.explain(run, ScoredFile("file", ts, run.alarms.astype(float), windows))

    spike = [line for line in lines if "row   2000" in line]
    assert len(spike) == 1 and "TP window 0" in spike[0]
    statistic, ratio = spike[0].split()[5], float(spike[0].split()[6])
    assert statistic in {"z_up", "j_up", "range_up"} and ratio > 1.0
    (missed,) = [line for line in lines if "missed window" in line]
    assert missed.startswith("  rows 2450-2550  missed window 1: closest ")
    closest = float(missed.split(" at ")[1].split(" x ")[0])
    assert 0.0 < closest < 1.0
    assert not any("FP" in line for line in lines)
