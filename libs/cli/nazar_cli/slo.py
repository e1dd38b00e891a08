"""``nazar slo`` and ``nazar report``: service level objectives, availability
and the monthly report through the API.

Uses ``NAZAR_API_URL`` and ``NAZAR_API_KEY`` (a ``read`` key suffices but for
``slo apply`` and ``slo delete``, which need ``admin``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from nazar_cli.api import request
from nazar_common.schemas.durations import format_span

app = typer.Typer(no_args_is_help=True)
report_app = typer.Typer(no_args_is_help=True)


def _pct(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}%"


def _span(seconds: float | None) -> str:
    return format_span(seconds, sep="")


def _burn(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def slo_lines(slos: list[dict[str, Any]]) -> list[str]:
    lines = ["NAME\tOBJECTIVE\tACHIEVED\tBUDGET LEFT\tBURN 1h/5m\tBURN 6h/30m\tMET"]
    for s in slos:
        spec, st = s["spec"], s.get("status") or {}
        left = st.get("error_budget_remaining")
        rates = st.get("burn_rates") or {}
        met = {True: "yes", False: "NO", None: "no data"}[st.get("attained")]
        lines.append(
            f"{s['name']}\t{spec['objective']:g}% / {_span(spec['window'])}\t"
            f"{_pct(st.get('sli_percent'), 4)}\t{_pct(None if left is None else left * 100, 1)}\t"
            f"{_burn(rates.get('1h'))}/{_burn(rates.get('5m'))}\t"
            f"{_burn(rates.get('6h'))}/{_burn(rates.get('30m'))}\t{met}"
        )
    return lines


@app.command("list")
def list_(output: Annotated[str, typer.Option(help="text or json.")] = "text") -> None:
    """SLOs with their SLI, error budget left and burn rates."""
    slos = request("GET", "/api/v1/slos").json()
    if output == "json":
        typer.echo(json.dumps(slos, indent=2))
        return
    for line in slo_lines(slos):
        typer.echo(line)


@app.command("apply")
def apply(file: Annotated[Path, typer.Argument(help="YAML or JSON file with SLOs.")]) -> None:
    """Create or replace SLOs (PUT /api/v1/slos/{name}): one, a list or ``{slos: [...]}``."""
    try:
        docs = [d for d in yaml.safe_load_all(file.read_text()) if d is not None]
    except (OSError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc}") from exc
    items: list[Any] = []
    for doc in docs:
        items += doc["slos"] if isinstance(doc, dict) and isinstance(doc.get("slos"), list) else (
            doc if isinstance(doc, list) else [doc])
    if not items:
        raise typer.BadParameter(f"{file} contains no SLO")
    for item in items:
        if not isinstance(item, dict) or not item.get("name"):
            raise typer.BadParameter("every SLO must be a mapping with a name")
        r = request("PUT", f"/api/v1/slos/{item['name']}", json=item)
        typer.echo(f"{'created' if r.status_code == 201 else 'applied'} slo {item['name']} "
                   f"(version {r.json().get('version')})")


@app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="The SLO's name.")]) -> None:
    """Delete an SLO."""
    request("DELETE", f"/api/v1/slos/{name}")
    typer.echo(f"deleted slo {name}")


def _group_by(label: str | None) -> dict[str, str]:
    return {"group_by": f"label:{label}"} if label else {}


@report_app.command("availability")
def availability(
    period: Annotated[str, typer.Option(help="Period ending now: 1d, 7d, 30d...")] = "30d",
    group_by: Annotated[
        str | None, typer.Option("--group-by", help="Host label to group by (role).")
    ] = None,
    gap: Annotated[str, typer.Option(help="Silence that counts as down.")] = "5m",
    output: Annotated[str, typer.Option(help="text or json.")] = "text",
) -> None:
    """Uptime, outages, longest outage and MTTR per group and host."""
    body = request("GET", "/api/v1/reports/availability",
                   params={"period": period, "gap": gap, **_group_by(group_by)}).json()
    if output == "json":
        typer.echo(json.dumps(body, indent=2))
        return
    typer.echo("GROUP/HOST\tUPTIME\tOUTAGES\tDOWNTIME\tLONGEST\tMTTR")
    for g in body["groups"]:
        name = ", ".join(f"{k}={v}" for k, v in g["group"].items()) or "all hosts"
        for label, row in [(name, g)] + [(f"  {h['host']}", h) for h in g["hosts"]]:
            longest = row["longest_outage"]["seconds"] if row["longest_outage"] else None
            typer.echo(f"{label}\t{_pct(row['uptime_percent'])}\t{row['outages']}\t"
                       f"{_span(row['downtime_seconds'])}\t{_span(longest)}\t"
                       f"{_span(row['mttr_seconds'])}")


@report_app.command("monthly")
def monthly(
    month: Annotated[
        str | None, typer.Option(help="YYYY-MM (UTC); default: the previous month.")
    ] = None,
    group_by: Annotated[
        str | None, typer.Option("--group-by", help="Host label to group by (role).")
    ] = None,
    html: Annotated[bool, typer.Option("--html", help="The printable HTML page.")] = False,
) -> None:
    """The monthly report (JSON, or HTML to save and print)."""
    params = {**({"month": month} if month else {}), **_group_by(group_by)}
    if html:
        typer.echo(request("GET", "/api/v1/reports/monthly.html", params=params).text)
        return
    typer.echo(json.dumps(request("GET", "/api/v1/reports/monthly", params=params).json(),
                          indent=2))
