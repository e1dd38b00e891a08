"""Availability and monthly reports: grouping and rendering (pure).

The routes (:mod:`nazar_ingest.routes.reports`) read presence, SLOs and
alerts from the store; this module groups hosts, assembles the report bodies
and renders the printable HTML page.
"""

from __future__ import annotations

import calendar
import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nazar_common.errors import InvalidInputError
from nazar_common.schemas.durations import format_span
from nazar_common.schemas.names import LABEL_NAME_RE
from nazar_common.schemas.slo import Availability

_MONTH_RE = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True, slots=True)
class GroupBy:
    """Hosts grouped by the value of a host label (None: one group of all hosts)."""

    label: str | None = None

    @classmethod
    def parse(cls, raw: str | None) -> GroupBy:
        if raw is None or raw.strip() in ("", "none"):
            return cls()
        text = raw.strip()
        if not text.startswith("label:") or not LABEL_NAME_RE.match(text[6:]):
            raise InvalidInputError(
                f"group_by {raw[:70]!r} is not label:<host label name> (like label:role)"
            )
        return cls(text[6:])

    def key(self, labels: Mapping[str, str]) -> dict[str, str]:
        return {} if self.label is None else {self.label: labels.get(self.label, "")}

    def out(self) -> str | None:
        return None if self.label is None else f"label:{self.label}"


def month_range(raw: str | None, now: float) -> tuple[str, float, float]:
    """``YYYY-MM`` (default: the previous month) as (name, start, end) in UTC."""
    if raw is None:
        today = datetime.fromtimestamp(now, UTC)
        year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    else:
        m = _MONTH_RE.fullmatch(raw.strip())
        if m is None or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1970:
            raise InvalidInputError(f"month {raw[:20]!r} is not YYYY-MM (like 2026-11)")
        year, month = int(m.group(1)), int(m.group(2))
    start = datetime(year, month, 1, tzinfo=UTC)
    days = calendar.monthrange(year, month)[1]
    end = start.timestamp() + days * 86400.0
    return f"{year:04d}-{month:02d}", start.timestamp(), end


def availability_groups(
    group_by: GroupBy,
    hosts: Iterable[tuple[str, Mapping[str, str], Availability]],
    max_outages: int,
) -> list[dict[str, Any]]:
    """Per group: the hosts' summed availability, then each host's own."""
    groups: dict[tuple[tuple[str, str], ...], tuple[Availability, list[dict[str, Any]]]] = {}
    for host, labels, avail in hosts:
        key = tuple(sorted(group_by.key(labels).items()))
        total, rows = groups.setdefault(key, (Availability(), []))
        total.merge(Availability(avail.monitored, list(avail.outages)))
        rows.append({"host": host, "labels": dict(labels), **avail.out(max_outages)})
    return [
        {"group": dict(key), **total.out(), "hosts": rows}
        for key, (total, rows) in sorted(groups.items())
    ]


def slo_in_group(selector_labels: Mapping[str, str], group: Mapping[str, str]) -> bool:
    """Whether an SLO belongs to a group: its host selector names the group's
    label value (an SLO without that label in its selector belongs to every group)."""
    return all(selector_labels.get(k, v) == v for k, v in group.items())


def monthly(
    month: str, start: float, end: float, group_by: GroupBy,
    availability: Sequence[dict[str, Any]], slos: Sequence[dict[str, Any]],
    alerts: Sequence[Mapping[str, Any]], acks: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The monthly report: per group, availability, SLO attainment, alerts by
    rule and severity, and time to acknowledge.

    ``alerts`` rows are (group label value, rule, severity, count); ``acks``
    rows (group label value, acknowledged, mean/median/max seconds)."""
    groups = []
    seen: set[str] = set()
    for avail in availability:
        g = avail["group"]
        value = next(iter(g.values()), None)
        if value is not None:
            seen.add(value)
        mine = [a for a in alerts if group_by.label is None or a["grp"] == value]
        ack = next((a for a in acks if group_by.label is None or a["grp"] == value), None)
        groups.append({
            "group": g,
            "availability": {k: v for k, v in avail.items() if k not in ("group", "hosts")},
            "hosts": [{k: v for k, v in h.items() if k != "outage_list"} for h in avail["hosts"]],
            "slos": [s for s in slos if slo_in_group(s["selector"], g)],
            "alerts": _alert_counts(mine),
            "time_to_acknowledge": _ack(ack),
        })
    # alerts of no group's host: burn_rate alerts (of an SLO) and retired hosts
    outside = [] if group_by.label is None else [a for a in alerts if a["grp"] not in seen]
    return {"month": month, "start": _iso(start), "end": _iso(end),
            "group_by": group_by.out(), "groups": groups,
            "alerts_outside_groups": _alert_counts(outside)}


def _alert_counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    by_rule: dict[str, int] = {}
    by_severity: dict[str, int] = {}
    for a in rows:
        by_rule[a["rule_name"]] = by_rule.get(a["rule_name"], 0) + int(a["n"])
        by_severity[a["severity"]] = by_severity.get(a["severity"], 0) + int(a["n"])
    return {
        "total": sum(by_rule.values()),
        "by_rule": dict(sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0]))),
        "by_severity": by_severity,
    }


def _ack(row: Mapping[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {"acknowledged": 0, "mean_seconds": None, "median_seconds": None,
                "max_seconds": None}
    return {
        "acknowledged": int(row["acked"]),
        **{f"{k}_seconds": None if row[k] is None else round(float(row[k]), 3)
           for k in ("mean", "median", "max")},
    }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def duration(seconds: float | None) -> str:
    """``3h 4m 5s`` (the report's durations)."""
    return "—" if seconds is None else format_span(seconds, parts=3)


def _pct(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f} %"


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#111}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:2rem 0 .5rem;
border-bottom:1px solid #ccc}h3{font-size:1rem;margin:1rem 0 .3rem}
table{border-collapse:collapse;margin:.3rem 0 1rem}td,th{border:1px solid #ccc;
padding:.2rem .5rem;text-align:left}th{background:#f3f3f3}td.n{text-align:right}
.ok{color:#176d2b}.bad{color:#b3261e}.muted{color:#666}
@media print{body{margin:0}h2{break-before:auto}section{break-inside:avoid}}
"""


def render_html(report: Mapping[str, Any]) -> str:
    """The monthly report as a self-contained printable page."""
    e = html.escape
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>Nazar monthly report {e(report['month'])}</title><style>{_CSS}</style>",
        "</head><body>",
        f"<h1>Monthly report — {e(report['month'])}</h1>",
        f"<p class=muted>{e(report['start'])} to {e(report['end'])}"
        + (f", grouped by {e(report['group_by'])}" if report["group_by"] else "") + "</p>",
    ]
    for g in report["groups"]:
        name = ", ".join(f"{k}={v or '(none)'}" for k, v in g["group"].items()) or "All hosts"
        a = g["availability"]
        out.append(f"<section><h2>{e(name)}</h2><h3>Availability</h3><table>")
        out.append("<tr><th>Uptime</th><th>Outages</th><th>Downtime</th><th>Longest</th>"
                   "<th>MTTR</th></tr>")
        longest = a["longest_outage"]["seconds"] if a["longest_outage"] else None
        out.append(f"<tr><td class=n>{_pct(a['uptime_percent'])}</td><td class=n>"
                   f"{a['outages']}</td><td>{duration(a['downtime_seconds'])}</td><td>"
                   f"{duration(longest)}</td><td>{duration(a['mttr_seconds'])}</td></tr></table>")
        out.append("<table><tr><th>Host</th><th>Uptime</th><th>Outages</th><th>Longest</th></tr>")
        for h in g["hosts"]:
            lo = h["longest_outage"]["seconds"] if h["longest_outage"] else None
            out.append(f"<tr><td>{e(h['host'])}</td><td class=n>{_pct(h['uptime_percent'])}</td>"
                       f"<td class=n>{h['outages']}</td><td>{duration(lo)}</td></tr>")
        out.append("</table><h3>Service level objectives</h3>")
        if g["slos"]:
            out.append("<table><tr><th>SLO</th><th>Objective</th><th>Achieved</th>"
                       "<th>Budget left</th><th>Met</th></tr>")
            for s in g["slos"]:
                met = s["attained"]
                cls, word = ("ok", "yes") if met else ("bad", "no") if met is False else (
                    "muted", "no data")
                left = s["error_budget_remaining"]
                out.append(
                    f"<tr><td>{e(s['name'])}</td><td class=n>{_pct(s['objective'])}</td>"
                    f"<td class=n>{_pct(s['sli_percent'], 4)}</td><td class=n>"
                    f"{_pct(None if left is None else left * 100, 1)}</td>"
                    f"<td class={cls}>{word}</td></tr>")
            out.append("</table>")
        else:
            out.append("<p class=muted>No SLO covers this group.</p>")
        al = g["alerts"]
        out.append(f"<h3>Alerts ({al['total']})</h3>")
        if al["total"]:
            sev = ", ".join(f"{e(k)}: {v}" for k, v in sorted(al["by_severity"].items()))
            out.append(f"<p>By severity: {sev}</p><table><tr><th>Rule</th><th>Alerts</th></tr>")
            for rule, n in al["by_rule"].items():
                out.append(f"<tr><td>{e(rule)}</td><td class=n>{n}</td></tr>")
            out.append("</table>")
        t = g["time_to_acknowledge"]
        out.append(f"<h3>Time to acknowledge</h3><p>{t['acknowledged']} acknowledged; mean "
                   f"{duration(t['mean_seconds'])}, median {duration(t['median_seconds'])}, "
                   f"longest {duration(t['max_seconds'])}</p></section>")
    other = report.get("alerts_outside_groups") or {"total": 0}
    if other["total"]:
        out.append(f"<section><h2>Alerts outside these groups ({other['total']})</h2>"
                   "<p class=muted>SLO burn-rate alerts, and hosts no longer reporting.</p>"
                   "<table><tr><th>Rule</th><th>Alerts</th></tr>")
        for rule, n in other["by_rule"].items():
            out.append(f"<tr><td>{e(rule)}</td><td class=n>{n}</td></tr>")
        out.append("</table></section>")
    out.append("</body></html>")
    return "".join(out)
