"""``nazar forecast``: when will a metric cross a level? (``GET /api/v1/forecast``)

Uses ``NAZAR_API_URL`` and a ``read`` key in ``NAZAR_API_KEY``. With
``--fail-within``, the exit status is 3 when a series is expected to cross
within the horizon: a capacity check for a scheduled pipeline.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

import typer

from nazar_cli.api import request

#: Exit status of ``--fail-within`` when something is due.
DUE = 3


def forecast(
    metric: Annotated[str, typer.Argument(help="Metric name, e.g. disk.used_percent.")],
    threshold: Annotated[float, typer.Option(help="The level, e.g. 90.")],
    host: Annotated[
        list[str], typer.Option("--host", help="Only these hosts (repeatable); default all.")
    ] = [],  # noqa: B006 (typer needs a list default)
    label: Annotated[
        list[str], typer.Option("--label", help="Series labels, name=value (repeatable).")
    ] = [],  # noqa: B006
    direction: Annotated[
        Literal["above", "below"], typer.Option(help="above: rising to it; below: falling.")
    ] = "above",
    horizon: Annotated[str, typer.Option(help="What counts as soon (7d, 30d).")] = "30d",
    lookback: Annotated[str, typer.Option(help="History fitted (12h to 90d).")] = "14d",
    within: Annotated[bool, typer.Option(help="Only series due within the horizon.")] = False,
    fail_within: Annotated[
        bool, typer.Option(help=f"Exit {DUE} when a series is due within the horizon.")
    ] = False,
    output: Annotated[str, typer.Option(help="text or json.")] = "text",
) -> None:
    """When each series is expected to cross the level, soonest first."""
    params: list[tuple[str, str | float]] = [
        ("metric", metric), ("threshold", threshold), ("direction", direction),
        ("horizon", horizon), ("lookback", lookback), ("limit", 1000),
    ]
    params += [("host", h) for h in host] + [("labels", v) for v in label]
    if within:
        params.append(("within", "true"))
    body = request("GET", "/api/v1/forecast", params=params, timeout=60.0).json()
    if output == "json":
        typer.echo(json.dumps(body, indent=2))
    else:
        for f in body["forecasts"]:
            labels = ",".join(f"{k}={v}" for k, v in f["labels"].items())
            when = f" (by {f['crossing_at']})" if f["status"] == "crossing" else ""
            typer.echo(f"{f['host']}\t{labels or '-'}\t{f['summary']}{when}")
        if not body["forecasts"]:
            typer.echo("no series" if not within else f"nothing due within {horizon}")
    if fail_within and any(f["within_horizon"] for f in body["forecasts"]):
        raise typer.Exit(DUE)
