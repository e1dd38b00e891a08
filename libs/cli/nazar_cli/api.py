"""Calling the Nazar API from commands: ``NAZAR_API_URL`` and
``NAZAR_API_KEY``, problem+json errors printed, and times given as ISO 8601
or as a duration ago."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import typer

from nazar_cli.settings import CliSettings


def client(timeout: float = 180.0) -> httpx.Client:
    settings = CliSettings()
    key = settings.api_key.get_secret_value()
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=settings.api_url.rstrip("/"), headers=headers, timeout=timeout)


def fail(r: httpx.Response) -> None:
    """Print an error response (its detail and listed fields) and exit 1."""
    try:
        body = r.json()
        detail = body.get("detail", "")
        errors = body.get("errors") or []
    except ValueError:
        detail, errors = r.text[:300], []
    typer.echo(f"error: HTTP {r.status_code}: {detail}", err=True)
    for e in errors:
        typer.echo(f"  {e.get('loc', '')}: {e.get('msg', '')}", err=True)
    raise typer.Exit(1)


def request(method: str, url: str, *, timeout: float = 180.0, **kwargs: Any) -> httpx.Response:
    """The response of a call; exits 2 when the API is unreachable, 1 on an error status."""
    try:
        with client(timeout) as c:
            r = c.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        typer.echo(f"error: cannot reach the API: {exc}", err=True)
        raise typer.Exit(2) from exc
    if r.status_code >= 400:
        fail(r)
    return r


def parse_time(text: str | None, default: datetime) -> datetime:
    """ISO 8601 (UTC when no zone is given) or a duration ago (``6h``, ``7d``)."""
    if not text:
        return default
    text = text.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if text[-1:] in units and text[:-1].replace(".", "", 1).isdigit():
        return datetime.now(UTC) - timedelta(seconds=float(text[:-1]) * units[text[-1]])
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r}: use ISO 8601 or a duration like 6h / 7d") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
