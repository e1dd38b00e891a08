#!/usr/bin/env python3
"""Accuracy benchmark of Nazar's streaming anomaly detectors on labelled series.

Replays every CSV (``timestamp,value``) found under ``--data`` through the
detector, point by point in row order (no look-ahead), writes one output CSV
per input (``timestamp,value,anomaly_score,is_anomaly``, same relative path
under ``--out``) and scores the alarms against NAB-style labelled windows
(``combined_windows.json``): NAB score (standard, low-FP, low-FN profiles),
event precision / recall / F1 and the false-positive rate outside windows,
for each category (the first directory level), overall, and
leave-one-category-out.

The composite detector (the default) runs every file as one series of one
:class:`DetectorBank`, all files updated together, and the benchmark prints
its throughput. Other detectors run file by file.

The first 15% of each file (at most 750 rows) is the learning period: the
detector sees those points but its output there is written as 0 / not anomaly,
and they are not scored.  One detector configuration is used for every file;
the labels are only used for scoring, and for the leave-one-category-out
selection below.

Leave-one-category-out (``--loco``, on by default for the composite detector):
for each category, the candidate settings of ``LOCO_GRID`` are scored on the
OTHER categories, the candidate whose worst category score there is highest
is chosen (what holds across categories, not what fits one; ties go to the
best mean there), and the held-out
category is scored with it. Candidates are first screened on the clean
controls of the synthetic suite (no labels): one that raises alarms on more
control series than the quietest candidate, plus one, is not eligible. The
LOCO figure is the NAB score of all files,
each scored by the setting chosen without its category.

``--explain`` (composite) lists, per file, every scored alarm with the
statistic that decided it and its ratio to its threshold, and every missed
window with the statistic that came closest inside it: how far a miss was
from an alarm, and which component a false alarm came from.

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

import synthetic  # noqa: E402
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
    STATISTICS,
    CompositeConfig,
    DetectorBank,
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


#: Settings of the benchmark run on top of the detector's defaults: one alarm
#: per incident (alarms are suppressed until 6 h after the last alarm-worthy
#: point), as the alert state machine does in the service.
BENCH_SETTINGS: dict[str, Any] = {"refractory_s": 6 * 3600.0}

#: Candidates of the leave-one-category-out selection: how far beyond its own
#: record a statistic must go, for the statistics in robust deviations (margin),
#: for the residual from the expected value in robust deviations (spike_margin)
#: and for the range of the residual in the series' own units (range_margin),
#: and how long the detector learns after a change of seasonality (relearn_s).
#: Smaller margins (0.1, 0.2) were dropped: they fail the synthetic screen.
LOCO_GRID: list[dict[str, Any]] = [
    {"margin": m, "spike_margin": z, "range_margin": r, "relearn_s": s}
    for m in (0.3, 0.5)
    for z in (0.3, 0.5)
    for r in (0.3, 0.5)
    for s in (3 * 3600.0, 6 * 3600.0)
]


@dataclass
class FileRun:
    rel: str
    timestamps: list[str]
    alarms: np.ndarray
    scores: np.ndarray
    seconds: float
    # composite only: per row, the statistic closest to (or beyond) its
    # threshold and its ratio to it (1 = the edge of normal)
    statistic: np.ndarray | None = None
    ratio: np.ndarray | None = None


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


def write_output(out_dir: str, rel: str, ts_text: list[str], val_text: list[str],
                 scores: np.ndarray, alarms: np.ndarray) -> None:
    dst = Path(out_dir) / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["timestamp", "value", "anomaly_score", "is_anomaly"])
        for i in range(len(ts_text)):
            writer.writerow([ts_text[i], val_text[i], f"{scores[i]:.6f}", int(alarms[i])])


@dataclass
class Series:
    rel: str
    ts_text: list[str]
    val_text: list[str]
    epoch: np.ndarray
    values: np.ndarray


def load_series(data_dir: Path, rels: list[str]) -> list[Series]:
    out = []
    for rel in rels:
        ts_text, val_text = read_series(data_dir / rel)
        epoch = np.array([epoch_seconds(parse_ts(t)) for t in ts_text])
        out.append(Series(rel, ts_text, val_text, epoch, np.array([float(v) for v in val_text])))
    return out


def run_bank(series: list[Series], config: dict[str, Any]) -> tuple[list[FileRun], float, int]:
    """Every file as one series of one detector bank, all updated together, row
    by row. Returns the runs, the detector seconds and the number of rounds."""
    cfg = CompositeConfig.model_validate(config)
    bank = DetectorBank(cfg, capacity=len(series))
    slots = bank.add_many(len(series))
    lengths = np.array([s.values.size for s in series])
    n = int(lengths.max())
    ts = np.zeros((len(series), n))
    vs = np.zeros((len(series), n))
    for i, s in enumerate(series):
        ts[i, : s.values.size] = s.epoch
        vs[i, : s.values.size] = s.values
    scores = np.zeros((len(series), n))
    alarms = np.zeros((len(series), n), dtype=bool)
    stats = np.zeros((len(series), n), dtype=np.int8)
    ratios = np.zeros((len(series), n))
    t0 = time.perf_counter()
    for k in range(n):
        live = np.flatnonzero(lengths > k)
        res = bank.update(slots[live], ts[live, k], vs[live, k])
        scores[live, k] = res.score
        alarms[live, k] = res.is_anomaly
        stats[live, k] = res.statistic
        ratios[live, k] = res.ratio
    seconds = time.perf_counter() - t0
    runs = []
    for i, s in enumerate(series):
        m = s.values.size
        learn = probation_rows(m)
        sc, al = scores[i, :m].copy(), alarms[i, :m].copy()
        sc[:learn] = 0.0
        al[:learn] = False
        runs.append(
            FileRun(
                s.rel,
                s.ts_text,
                al,
                sc,
                seconds * m / lengths.sum(),
                stats[i, :m].copy(),
                ratios[i, :m].copy(),
            )
        )
    return runs, seconds, n


def explain(run: FileRun, sf: ScoredFile) -> list[str]:
    """What decided each alarm of a file, and how close each missed window came.

    One line per scored alarm (row, TP in window k or FP, the statistic and its
    ratio to its threshold) and per missed window (its rows, and the row inside
    it where a statistic came closest to its threshold: below 1, no alarm)."""
    if run.statistic is None or run.ratio is None:
        return []
    lines = []
    alarm = sf.alarms(0.5)
    for row in np.flatnonzero(alarm):
        k = int(sf.win[row])
        what = f"TP window {k}" if k >= 0 else "FP"
        lines.append(
            f"  row {row:>6}  {what:<12} {STATISTICS[run.statistic[row]]:<9} "
            f"{run.ratio[row]:5.2f} x threshold"
        )
    for k, (lo, hi) in enumerate(sf.bounds):
        rows = np.arange(lo, hi + 1)
        rows = rows[sf.scored[rows]]
        if not rows.size or alarm[rows].any():
            continue
        best = int(rows[np.argmax(run.ratio[rows])])
        gated = (
            " (held back by the alarm gate: one alarm per incident)"
            if run.ratio[best] >= 1.0
            else ""
        )
        lines.append(
            f"  rows {lo}-{hi}  missed window {k}: closest {STATISTICS[run.statistic[best]]} "
            f"at {run.ratio[best]:.2f} x threshold (row {best}){gated}"
        )
    return lines


@dataclass
class Summary:
    files: int
    windows: int
    tp: int
    fn: int
    fp: int
    precision: float
    recall: float
    f1: float
    fpr: float
    mean_delay: float | None
    nab: dict[str, float]


def summarise(scored: list[ScoredFile]) -> Summary:
    std = PROFILES["standard"]
    per_file = [f.evaluate(0.5, std) for f in scored]
    tp = sum(r.tp for r in per_file)
    fn = sum(r.fn for r in per_file)
    fp = sum(r.fp for r in per_file)
    outside = sum(r.outside_rows for r in per_file)
    precision, recall = safe_div(tp, tp + fp), safe_div(tp, tp + fn)
    delays = [d for r in per_file for d in r.delays]
    n_windows = sum(f.n_windows for f in scored)
    nab = {
        p: normalise(sum(f.raw_score(0.5, prof) for f in scored), n_windows, prof)
        for p, prof in PROFILES.items()
    }
    return Summary(len(scored), n_windows, tp, fn, fp, precision, recall,
                   f1_score(precision, recall), safe_div(fp, outside),
                   float(np.mean(delays)) if delays else None, nab)


def category(name: str) -> str:
    return name.split("/", 1)[0] if "/" in name else "(top)"


def score_runs(
    runs: list[FileRun], labels: dict[str, list[tuple[np.datetime64, np.datetime64]]]
) -> dict[str, ScoredFile]:
    out = {}
    for run in runs:
        key = label_key(run.rel, labels)
        if key is None:
            continue
        ts = np.array([np.datetime64(parse_ts(t), "us") for t in run.timestamps])
        out[key] = ScoredFile(key, ts, run.alarms.astype(float), labels[key])
    return out


def by_category(scored: dict[str, ScoredFile]) -> dict[str, list[ScoredFile]]:
    cats: dict[str, list[ScoredFile]] = {}
    for key in sorted(scored):
        cats.setdefault(category(key), []).append(scored[key])
    return cats


def summary_line(name: str, s: Summary) -> str:
    return (
        f"{name:<22} {s.files:>5} {s.windows:>4} {s.tp:>4} {s.fn:>4} {s.fp:>5} "
        f"{fmt(s.precision):>6} {fmt(s.recall):>6} {fmt(s.f1):>6} {fmt(100 * s.fpr, 2):>6} "
        + " ".join(f"{s.nab[p]:>7.1f}" for p in PROFILES)
    )


SUMMARY_HEAD = (
    f"{'':<22} {'files':>5} {'win':>4} {'tp':>4} {'fn':>4} {'fp':>5} {'prec':>6} {'rec':>6} "
    f"{'f1':>6} {'fpr%':>6} " + " ".join(f"{PROFILE_LABELS[p]:>7}" for p in PROFILES)
)


def summary_json(s: Summary) -> dict[str, Any]:
    return {k: getattr(s, k) for k in Summary.__dataclass_fields__}


def _candidate(series: list[Series], config: dict[str, Any]) -> list[FileRun]:
    return run_bank(series, config)[0]


def loco(
    series: list[Series],
    labels: dict[str, list[tuple[np.datetime64, np.datetime64]]],
    base: dict[str, Any],
    jobs: int,
) -> tuple[Summary, dict[str, Any]]:
    """Leave-one-category-out: choose on the other categories, score the one left out."""
    configs = [{**base, **cand} for cand in LOCO_GRID]
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=min(jobs, len(configs))) as pool:
            all_runs = list(pool.map(_candidate, [series] * len(configs), configs))
    else:
        all_runs = [_candidate(series, c) for c in configs]
    per_cand = [by_category(score_runs(runs, labels)) for runs in all_runs]
    # screened first on the synthetic suite's clean controls (no labels): a
    # candidate that raises alarms on more control series than the quietest
    # candidate (plus one, for chance) is not eligible
    quiet = [control_alarms(c) for c in configs]
    eligible = [i for i in range(len(configs)) if quiet[i] <= min(quiet) + 1]
    cats = sorted(per_cand[0])
    table = [{c: summarise(pc[c]).nab["standard"] for c in cats} for pc in per_cand]
    chosen: dict[str, Any] = {}
    held_out: list[ScoredFile] = []
    for cat in cats:
        others = [c for c in cats if c != cat]
        # the best worst case on the other categories; ties by their mean
        best = max(
            eligible,
            key=lambda i: (
                min(table[i][c] for c in others),
                sum(table[i][c] for c in others),
                -i,
            ),
        )
        chosen[cat] = {"setting": LOCO_GRID[best], "score": table[best][cat],
                       "worst_of_others": min(table[best][c] for c in others)}
        held_out += per_cand[best][cat]
    return summarise(held_out), {"grid": [
        {"setting": LOCO_GRID[i], "standard_by_category": table[i],
         "control_series_alarming": quiet[i], "eligible": i in eligible}
        for i in range(len(configs))
    ], "chosen": chosen}


#: Seeds of the synthetic controls the candidates are screened on.
SCREEN_SEEDS = 10


def control_alarms(config: dict[str, Any]) -> int:
    """Clean synthetic control series (every base, ``SCREEN_SEEDS`` seeds) that
    raise an alarm after the learning period under ``config``."""
    cases = [synthetic.make_case(b, None, seed) for seed in range(SCREEN_SEEDS)
             for b in synthetic.BASES]
    outcomes, _ = synthetic.run_suite(cases, CompositeConfig.model_validate(config))
    return sum(1 for o in outcomes if o.alarms.size)


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
    ap.add_argument("--no-loco", action="store_true", help="skip leave-one-category-out")
    ap.add_argument("--jobs", type=int, default=0, help="worker processes (default: CPU count)")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    ap.add_argument(
        "--explain",
        action="store_true",
        help="composite: list every alarm with the statistic that decided it, and every "
        "missed window with the statistic that came closest to its threshold",
    )
    args = ap.parse_args(argv)

    data_dir, out_dir = Path(args.data), Path(args.out)
    labels = load_labels(Path(args.labels))
    rels = find_csvs(data_dir)
    if not rels:
        ap.error(f"no CSV files under {data_dir}")
    jobs = args.jobs or os.cpu_count() or 1
    composite = args.detector == "composite"
    config = {**(BENCH_SETTINGS if composite else {}), **json.loads(args.config or "{}")}
    probe = create_detector(args.detector, config)

    t0 = time.perf_counter()
    rounds = 0
    if composite:
        series = load_series(data_dir, rels)
        runs, det_seconds, rounds = run_bank(series, config)
    else:
        if jobs > 1:
            with ProcessPoolExecutor(max_workers=min(jobs, len(rels))) as pool:
                futures = [
                    pool.submit(run_file, str(data_dir), r, str(out_dir), args.detector, config)
                    for r in rels
                ]
                runs = [f.result() for f in futures]
        else:
            runs = [run_file(str(data_dir), r, str(out_dir), args.detector, config) for r in rels]
        det_seconds = sum(r.seconds for r in runs)
    wall = time.perf_counter() - t0
    n_rows = sum(len(r.timestamps) for r in runs)
    if composite:
        for s, run in zip(series, runs, strict=True):
            write_output(str(out_dir), s.rel, s.ts_text, s.val_text, run.scores, run.alarms)

    print("Nazar anomaly-detection accuracy benchmark")
    print(f"  data      : {data_dir} ({len(runs)} files, {n_rows} rows)")
    print(f"  labels    : {args.labels}")
    print(f"  output    : {out_dir}")
    print(f"  detector  : {args.detector}")
    print(f"  config    : {json.dumps(probe.config_dict(), sort_keys=True)}")
    print(
        f"  machine   : {os.cpu_count()} CPUs, Python {platform.python_version()} "
        f"({platform.machine()}, {platform.system()}), numpy {np.__version__}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    if composite:
        print(
            f"  runtime   : {wall:.1f} s wall; detector {det_seconds:.2f} s on one core for "
            f"{n_rows} points = {n_rows / det_seconds:,.0f} points/s "
            f"({rounds} batches of at most {len(runs)} series, one point per series each)"
        )
    else:
        print(
            f"  runtime   : {wall:.1f} s wall with {min(jobs, len(runs))} processes; "
            f"detector time {det_seconds:.1f} s = {1e6 * det_seconds / max(n_rows, 1):.0f} us/point"
        )
    print("  learning  : first 15% of each file (max 750 rows), output 0, not scored")

    scored = score_runs(runs, labels)
    unlabelled = [r.rel for r in runs if label_key(r.rel, labels) is None]
    if unlabelled:
        print(f"note: {len(unlabelled)} files have no labels entry and are not scored")
    if not scored:
        print("nothing to score")
        return 1

    std = PROFILES["standard"]
    per_file: list[FileScore] = [f.evaluate(0.5, std) for f in scored.values()]
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
    if args.explain and composite:
        print()
        print(
            "alarms and missed windows: the statistic that decided, as a multiple of its "
            "threshold (1 = the edge of normal)"
        )
        for run in runs:
            key = label_key(run.rel, labels)
            if key is None:
                continue
            lines = explain(run, scored[key])
            if lines:
                print(run.rel)
                print("\n".join(lines))
    print()
    print("NAB score (0 = never alarm, 100 = perfect) and event metrics; one configuration")
    print(SUMMARY_HEAD)
    cats = by_category(scored)
    results: dict[str, Any] = {}
    for cat, files in cats.items():
        summ = summarise(files)
        results[cat] = summary_json(summ)
        print(summary_line(cat, summ))
    overall = summarise(list(scored.values()))
    results["overall"] = summary_json(overall)
    print(summary_line("overall", overall))
    loco_doc: dict[str, Any] | None = None
    if composite and not args.no_loco and len(cats) > 1:
        series_all = series if composite else []
        base = {**config}
        for key in LOCO_GRID[0]:
            base.pop(key, None)
        loco_summary, loco_doc = loco(series_all, labels, base, jobs)
        results["loco"] = summary_json(loco_summary)
        print(summary_line("leave-one-category-out", loco_summary))
        print()
        print("leave-one-category-out: setting chosen on the other categories (worst of them)")
        for cat, ch in loco_doc["chosen"].items():
            print(f"  {cat:<22} {json.dumps(ch['setting'])}: held-out {ch['score']:.1f} "
                  f"(worst of the others {ch['worst_of_others']:.1f})")
        print("  grid (NAB standard by category):")
        for row in loco_doc["grid"]:
            print(f"    {json.dumps(row['setting']):<46} "
                  + "  ".join(f"{c} {v:.1f}" for c, v in row["standard_by_category"].items())
                  + f"  controls alarming {row['control_series_alarming']}"
                  + ("" if row["eligible"] else " (not eligible)"))
    if args.json:
        doc = {
            "detector": args.detector,
            "config": probe.config_dict(),
            "wall_seconds": wall,
            "detector_seconds": det_seconds,
            "results": results,
            "loco": loco_doc,
            "files": [
                {
                    "file": r.name, "rows": r.rows, "windows": r.windows, "tp": r.tp,
                    "fn": r.fn, "fp": r.fp, "precision": r.precision, "recall": r.recall,
                    "f1": r.f1, "fpr": r.fpr, "nab_standard": r.normalised,
                }
                for r in per_file
            ],
        }
        Path(args.json).write_text(json.dumps(doc, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
