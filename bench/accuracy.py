#!/usr/bin/env python3
"""Accuracy benchmark of Nazar's streaming anomaly detectors on labelled series.

Replays every CSV (``timestamp,value``) found under ``--data`` through a fresh
detector, point by point in row order, writes one output CSV per input
(``timestamp,value,anomaly_score,is_anomaly``, same relative path under
``--out``) and scores the alarms against NAB-style labelled windows
(``combined_windows.json``): NAB score (standard, low-FP, low-FN profiles),
event precision / recall / F1 and the false-positive rate outside windows.

The first 15% of each file (at most 750 rows) is the learning period: the
detector sees those points but its output there is written as 0 / not anomaly,
and they are not scored.  One detector configuration is used for every file;
the labels are only used for scoring.

Example::

    python bench/accuracy.py --data ../shared/datasets/nab/data \\
        --labels ../shared/datasets/nab/labels/combined_windows.json \\
        --out bench/results/nab
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "services" / "analyzer", ROOT / "bench"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from nab_scoring import (  # noqa: E402
    PROFILES,
    FileScore,
    ScoredFile,
    f1_score,
    normalise,
    probation_rows,
    safe_div,
)

from nazar_analyzer.detection import (  # noqa: E402
    DEFAULT_DETECTOR,
    available_detectors,
    create_detector,
)

PROFILE_LABELS = {
    "standard": "standard",
    "reward_low_FP_rate": "low FP",
    "reward_low_FN_rate": "low FN",
}


def parse_ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.strip().replace("/", "-"))


def epoch_seconds(t: dt.datetime) -> float:
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.timestamp()


@dataclass
class FileRun:
    rel: str
    timestamps: list[str]
    alarms: np.ndarray
    scores: np.ndarray
    seconds: float


def read_series(path: Path) -> tuple[list[str], list[str]]:
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader)]
        ti, vi = header.index("timestamp"), header.index("value")
        ts, vals = [], []
        for row in reader:
            if row:
                ts.append(row[ti])
                vals.append(row[vi])
    return ts, vals


def run_file(
    data_dir: str, rel: str, out_dir: str, detector: str, config: dict[str, Any] | None
) -> FileRun:
    """Replay one file through a fresh detector and write its output CSV."""
    ts_text, val_text = read_series(Path(data_dir) / rel)
    n = len(ts_text)
    learn = probation_rows(n)
    det = create_detector(detector, config)
    scores = np.zeros(n)
    alarms = np.zeros(n, dtype=bool)
    t0 = time.perf_counter()
    for i, (ts, val) in enumerate(zip(ts_text, val_text, strict=True)):
        res = det.update(epoch_seconds(parse_ts(ts)), float(val))
        if i >= learn:
            scores[i] = res.anomaly_score
            alarms[i] = res.is_anomaly
    seconds = time.perf_counter() - t0
    dst = Path(out_dir) / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["timestamp", "value", "anomaly_score", "is_anomaly"])
        for i in range(n):
            writer.writerow([ts_text[i], val_text[i], f"{scores[i]:.6f}", int(alarms[i])])
    return FileRun(rel, ts_text, alarms, scores, seconds)


def find_csvs(data_dir: Path) -> list[str]:
    found = []
    for root, _dirs, files in os.walk(data_dir):
        for name in files:
            if name.endswith(".csv"):
                found.append(os.path.relpath(os.path.join(root, name), data_dir))
    return sorted(p.replace(os.sep, "/") for p in found)


def load_labels(path: Path) -> dict[str, list[tuple[np.datetime64, np.datetime64]]]:
    raw = json.loads(path.read_text())
    return {
        k.replace("\\", "/"): [
            (np.datetime64(parse_ts(a), "us"), np.datetime64(parse_ts(b), "us")) for a, b in v
        ]
        for k, v in raw.items()
    }


def label_key(rel: str, labels: dict[str, Any]) -> str | None:
    for cand in (rel, rel[5:] if rel.startswith("data/") else None):
        if cand and cand in labels:
            return cand
    return None


def fmt(x: float | None, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{nd}f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", required=True, help="directory of CSVs (searched recursively)")
    ap.add_argument("--labels", required=True, help="windows JSON (NAB combined_windows.json)")
    ap.add_argument("--out", required=True, help="directory for the detector outputs")
    ap.add_argument(
        "--detector",
        default=DEFAULT_DETECTOR,
        help=f"detector name (default {DEFAULT_DETECTOR}; {', '.join(available_detectors())})",
    )
    ap.add_argument("--config", help="JSON object of detector settings overriding the defaults")
    ap.add_argument("--jobs", type=int, default=0, help="worker processes (default: CPU count)")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    args = ap.parse_args(argv)

    data_dir, out_dir = Path(args.data), Path(args.out)
    labels = load_labels(Path(args.labels))
    config = json.loads(args.config) if args.config else None
    rels = find_csvs(data_dir)
    if not rels:
        ap.error(f"no CSV files under {data_dir}")
    jobs = args.jobs or os.cpu_count() or 1
    probe = create_detector(args.detector, config)

    t0 = time.perf_counter()
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=min(jobs, len(rels))) as pool:
            futures = [
                pool.submit(run_file, str(data_dir), r, str(out_dir), args.detector, config)
                for r in rels
            ]
            runs = [f.result() for f in futures]
    else:
        runs = [run_file(str(data_dir), r, str(out_dir), args.detector, config) for r in rels]
    wall = time.perf_counter() - t0
    n_rows = sum(len(r.timestamps) for r in runs)
    cpu_seconds = sum(r.seconds for r in runs)

    print("Nazar anomaly-detection accuracy benchmark")
    print(f"  data      : {data_dir} ({len(runs)} files, {n_rows} rows)")
    print(f"  labels    : {args.labels}")
    print(f"  output    : {out_dir}")
    print(f"  detector  : {args.detector}")
    print(f"  config    : {json.dumps(probe.config_dict(), sort_keys=True)}")
    print(
        f"  machine   : {os.cpu_count()} CPUs, Python {platform.python_version()} "
        f"({platform.machine()}, {platform.system()}), numpy {np.__version__}"
    )
    print(
        f"  runtime   : {wall:.1f} s wall with {min(jobs, len(runs))} processes; "
        f"detector time {cpu_seconds:.1f} s = {1e6 * cpu_seconds / max(n_rows, 1):.0f} us/point"
    )
    print("  learning  : first 15% of each file (max 750 rows), output 0, not scored")

    scored: list[ScoredFile] = []
    unlabelled = []
    for run in runs:
        key = label_key(run.rel, labels)
        if key is None:
            unlabelled.append(run.rel)
            continue
        ts = np.array([np.datetime64(parse_ts(t), "us") for t in run.timestamps])
        scored.append(ScoredFile(key, ts, run.alarms.astype(float), labels[key]))
    if unlabelled:
        print(f"note: {len(unlabelled)} files have no labels entry and are not scored")
    if not scored:
        print("nothing to score")
        return 1

    std = PROFILES["standard"]
    per_file: list[FileScore] = [f.evaluate(0.5, std) for f in scored]
    width = max(len(r.name) for r in per_file)
    head = (
        f"{'file':<{width}} {'rows':>5} {'win':>3} {'tp':>3} {'fn':>3} {'fp':>4} "
        f"{'prec':>6} {'rec':>6} {'f1':>6} {'fpr%':>6} {'delay':>5} {'NABstd':>7}"
    )
    print()
    print(head)
    print("-" * len(head))
    for r in per_file:
        delay = float(np.mean(r.delays)) if r.delays else float("nan")
        print(
            f"{r.name:<{width}} {r.rows:>5} {r.windows:>3} {r.tp:>3} {r.fn:>3} {r.fp:>4} "
            f"{fmt(r.precision):>6} {fmt(r.recall):>6} {fmt(r.f1):>6} "
            f"{fmt(100 * r.fpr, 2):>6} {fmt(delay, 2):>5} {fmt(r.normalised, 1):>7}"
        )
    print("-" * len(head))

    tp = sum(r.tp for r in per_file)
    fn = sum(r.fn for r in per_file)
    fp = sum(r.fp for r in per_file)
    outside = sum(r.outside_rows for r in per_file)
    precision, recall = safe_div(tp, tp + fp), safe_div(tp, tp + fn)
    delays = [d for r in per_file for d in r.delays]
    n_windows = sum(f.n_windows for f in scored)
    totals: dict[str, Any] = {
        "files": len(scored),
        "rows": n_rows,
        "windows": n_windows,
        "tp": tp,
        "fn": fn,
        "fp": fp,
        "precision": precision,
        "recall": recall,
        "f1": f1_score(precision, recall),
        "fpr": safe_div(fp, outside),
        "mean_delay": float(np.mean(delays)) if delays else None,
        "nab": {},
    }
    for pname, prof in PROFILES.items():
        raw = sum(f.raw_score(0.5, prof) for f in scored)
        totals["nab"][pname] = normalise(raw, n_windows, prof)
    print(
        f"TOTAL {len(scored)} files, {n_windows} windows: detected {tp}, missed {fn}, "
        f"false-positive alarms {fp}"
    )
    print(
        f"  event precision {fmt(precision)}  recall {fmt(recall)}  F1 {fmt(totals['f1'])}  "
        f"FPR (rows outside windows) {fmt(100 * totals['fpr'], 2)}%  "
        f"mean delay {fmt(totals['mean_delay'], 2)} of window"
    )
    print(
        "  NAB score (0 = never alarm, 100 = perfect): "
        + "  ".join(f"{PROFILE_LABELS[p]} {totals['nab'][p]:.1f}" for p in PROFILES)
    )
    if args.json:
        doc = {
            "detector": args.detector,
            "config": probe.config_dict(),
            "wall_seconds": wall,
            "detector_seconds": cpu_seconds,
            "totals": totals,
            "files": [
                {
                    "file": r.name,
                    "rows": r.rows,
                    "windows": r.windows,
                    "tp": r.tp,
                    "fn": r.fn,
                    "fp": r.fp,
                    "precision": r.precision,
                    "recall": r.recall,
                    "f1": r.f1,
                    "fpr": r.fpr,
                    "nab_standard": r.normalised,
                }
                for r in per_file
            ],
        }
        Path(args.json).write_text(json.dumps(doc, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
