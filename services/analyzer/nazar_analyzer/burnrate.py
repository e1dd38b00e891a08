"""``burn_rate`` rules: multi-window, multi-burn-rate alerts on an SLO (pure).

As in Google's SRE workbook (chapter "Alerting on SLOs"): the burn rate of a
window is its error ratio divided by the error budget (``1 - objective``);
a pair of windows fires when BOTH its long and its short window burn at least
``factor`` times the sustainable rate (the long window proves it matters, the
short one that it is still happening, so the alert resolves soon after the
burning stops). The defaults page on 2 % of a 30-day budget spent in an hour
(1h/5m at 14.4x) and on 5 % in six hours (6h/30m at 6x).

The rule is evaluated on the clock (the analyzer's sweep), on one subject per
SLO; the engine measures the windows (:func:`windows`) and steps the shared
state machine with :func:`observe`'s observation.
"""

from __future__ import annotations

from collections.abc import Mapping

from nazar_analyzer.evaluators import fmt
from nazar_analyzer.machine import Observation
from nazar_analyzer.store import Subject
from nazar_common.db.queries import format_duration
from nazar_common.schemas.config import BurnRateParams
from nazar_common.schemas.slo import Measure, SLOSpec

KIND = "burn_rate"


def subject(slo: str) -> Subject:
    """The one subject of a burn_rate rule: its SLO (no host)."""
    return Subject(f"o:{slo}", "", labels=(("slo", slo),))


def windows(params: BurnRateParams) -> list[float]:
    """Every window the rule needs measured, longest first."""
    return sorted({w for p in params.windows for w in (p.long, p.short)}, reverse=True)


def label(seconds: float) -> str:
    """``1h``, ``5m``, ``90s``: a window as people write it."""
    return format_duration(seconds)


def unknown(params: BurnRateParams, now: float) -> Observation:
    """The observation of a rule whose SLO does not exist: nothing burns."""
    return Observation(now, False, explanation=f"SLO {params.slo} does not exist (deleted?)")


def observe(
    params: BurnRateParams, slo: SLOSpec, measures: Mapping[float, Measure], now: float
) -> Observation:
    """Whether any window pair burns the SLO's error budget too fast."""
    budget = slo.budget
    rates = {w: m.burn_rate(budget) for w, m in measures.items()}
    burning = []
    for pair in params.windows:
        long, short = rates.get(pair.long), rates.get(pair.short)
        if long is not None and short is not None and long >= pair.factor and (
            short >= pair.factor
        ):
            burning.append(pair)
    contributors = tuple(
        f"burn_rate_{label(w)}={fmt(r)}" for w, r in sorted(rates.items()) if r is not None
    )
    if burning:
        pair = max(burning, key=lambda p: p.factor)
        long, short = rates[pair.long], rates[pair.short]
        assert long is not None and short is not None
        spent = long * pair.long / slo.window * 100
        text = (
            f"SLO {slo.name} ({slo.objective:g} % over {label(slo.window)}) burns its error "
            f"budget {fmt(long)}x over {label(pair.long)} and {fmt(short)}x over "
            f"{label(pair.short)} (alert at {pair.factor:g}x): {spent:.2g} % of the budget "
            f"spent in {label(pair.long)}"
        )
        return Observation(now, True, long, None, None, pair.factor, None, None, text,
                           contributors)
    first = params.windows[0]
    long = rates.get(first.long)
    if all(r is None for r in rates.values()):
        text = f"SLO {slo.name}: no events in its alert windows"
    else:
        text = f"SLO {slo.name} burns its error budget " + ", ".join(
            f"{fmt(rates.get(p.long))}x over {label(p.long)} and {fmt(rates.get(p.short))}x "
            f"over {label(p.short)} (alert at {p.factor:g}x)" for p in params.windows)
    return Observation(now, False, long, None, None, first.factor, None, None, text,
                       contributors)
