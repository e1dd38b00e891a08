"""Text shared by the channel renderers: titles, numbers, links."""

from __future__ import annotations

from nazar_notifier.model import AlertItem, Notification

STATUS_EMOJI = {"firing": "🔴", "nodata": "⚪", "flapping": "🟠", "resolved": "🟢"}
SEVERITY_EMOJI = {"critical": "🚨", "warning": "⚠️", "info": "\N{INFORMATION SOURCE}\ufe0f"}


def fmt_number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1e6 or (value != 0 and abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def expected_text(alert: AlertItem) -> str:
    low, high = alert.expected_low, alert.expected_high
    if low is None and high is None:
        return "-"
    if low is None:
        return f"≤ {fmt_number(high)}"
    if high is None:
        return f"≥ {fmt_number(low)}"
    return f"{fmt_number(low)} - {fmt_number(high)}"


def alert_title(alert: AlertItem) -> str:
    subject = f"{alert.rule} on {alert.host}"
    if alert.status == "flapping":
        return f"FLAPPING: {subject}"
    if alert.status == "nodata":
        return f"NO DATA: {subject}"
    return f"{alert.status.upper()}: {subject}"


def summary(alert: AlertItem) -> str:
    return alert.annotations.get("summary") or alert.explanation or alert_title(alert)


def notification_title(n: Notification) -> str:
    if n.kind == "test":
        return f"[TEST] Nazar test notification for channel {n.channel}"
    firing, resolved = len(n.firing), len(n.resolved)
    subject = ", ".join(f"{k}={v}" for k, v in n.group_labels.items() if v) or n.group_key
    if n.kind == "flapping":
        return f"[FLAPPING] {subject}"
    if firing:
        extra = f" ({resolved} resolved)" if resolved else ""
        return f"[FIRING:{firing}] {subject}{extra}"
    return f"[RESOLVED:{resolved}] {subject}"


def dashboard_link(n: Notification, alert: AlertItem | None = None) -> str:
    base = n.dashboard_url.rstrip("/")
    if not base:
        return ""
    if alert is None or alert.alert_id <= 0:
        return f"{base}/#/alerts"
    return f"{base}/#/alerts/{alert.alert_id}"


def plain_text(n: Notification) -> str:
    lines = [notification_title(n), ""]
    for a in n.alerts:
        lines.append(f"* {alert_title(a)} [{a.severity}]")
        if a.metric:
            lines.append(
                f"  {a.metric}: observed {fmt_number(a.value)}, expected {expected_text(a)}"
            )
        if a.explanation:
            lines.append(f"  {a.explanation}")
        if a.contributors:
            lines.append(f"  contributors: {', '.join(a.contributors)}")
        lines.append(f"  since {a.started_at.isoformat()}")
        if a.ended_at:
            lines.append(f"  resolved {a.ended_at.isoformat()}")
        link = dashboard_link(n, a)
        if link:
            lines.append(f"  {link}")
    return "\n".join(lines) + "\n"
