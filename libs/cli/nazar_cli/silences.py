"""``nazar silences``: create, list and expire notification silences (through the API)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import typer

from nazar_cli.settings import CliSettings
from nazar_common.schemas.silences import Matcher

app = typer.Typer(no_args_is_help=True)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if match is None:
        raise typer.BadParameter(f"not a duration: {text!r} (e.g. 30m, 2h, 1d)")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def _client(settings: CliSettings) -> httpx.Client:
    key = settings.api_key.get_secret_value()
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=settings.api_url, headers=headers, timeout=30)


def _check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        typer.echo(f"error {response.status_code}: {detail}", err=True)
        raise typer.Exit(1)
    return response.json() if response.content else None


@app.command("add")
def add(
    matcher: Annotated[
        list[str],
        typer.Option(
            "--matcher", "-m", help="name=value, name!=value, name=~re, name!~re; repeatable."
        ),
    ],
    duration: Annotated[str, typer.Option(help="How long, e.g. 2h.")] = "1h",
    ends_at: Annotated[
        str | None, typer.Option(help="End time (ISO 8601); overrides --duration.")
    ] = None,
    comment: Annotated[str, typer.Option(help="Why.")] = "",
    author: Annotated[str, typer.Option(help="Who (default: the API key's name).")] = "",
) -> None:
    """Silence matching alerts from now on."""
    try:
        matchers = [Matcher.parse(m) for m in matcher]
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    end = (
        datetime.fromisoformat(ends_at) if ends_at else datetime.now(UTC) + parse_duration(duration)
    )
    body = {
        "matchers": [m.model_dump() for m in matchers],
        "ends_at": end.isoformat(),
        "comment": comment,
        "created_by": author,
    }
    with _client(CliSettings()) as client:
        out = _check(client.post("/api/v1/silences", json=body))
    typer.echo(f"silence {out['id']} until {out['ends_at']}")


@app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Include expired silences.")] = False,
) -> None:
    """List silences (active and pending by default)."""
    with _client(CliSettings()) as client:
        rows = _check(client.get("/api/v1/silences", params={"active": str(not all_).lower()}))
    for row in rows:
        matchers = ",".join(f'{m["name"]}{m["op"]}"{m["value"]}"' for m in row["matchers"])
        typer.echo(
            f"{row['id']}\t{row['state']}\t{row['ends_at']}\t{row['created_by']}\t"
            f"{matchers}\t{row['comment']}"
        )


@app.command("expire")
def expire(silence_id: str) -> None:
    """End a silence now."""
    with _client(CliSettings()) as client:
        _check(client.delete(f"/api/v1/silences/{silence_id}"))
    typer.echo(f"expired {silence_id}")
