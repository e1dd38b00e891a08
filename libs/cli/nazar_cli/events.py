"""``nazar events``: record deploys and other events from pipelines, list them.

Uses ``NAZAR_API_URL`` and ``NAZAR_API_KEY``: an ``ingest`` key records
events (``deploy``, ``add``), a ``read`` key lists them, ``delete`` needs
``admin``. A deploy step should not fail a pipeline because monitoring is
unreachable: append ``|| true`` where that matters (exit 2: API unreachable;
exit 1: the API refused the event, with the reason on stderr).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from nazar_cli.api import parse_time, request

app = typer.Typer(no_args_is_help=True)

#: Seconds one call may take (a deploy step must not hang).
TIMEOUT = 15.0


def parse_targets(values: list[str]) -> tuple[list[str], dict[str, str]]:
    """Host names and a label selector from ``--hosts`` values: comma-separated
    items, ``name=value`` items form the selector, the others are host names."""
    hosts: list[str] = []
    selector: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            name, sep, label_value = item.partition("=")
            if not sep:
                hosts.append(item)
            elif not name.strip():
                raise typer.BadParameter(f"{item!r}: a selector item is name=value")
            elif selector.get(name.strip(), label_value) != label_value:
                raise typer.BadParameter(f"label {name.strip()!r} is given twice")
            else:
                selector[name.strip()] = label_value.strip()
    return hosts, selector


def parse_labels(values: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            if not item.strip():
                continue
            name, sep, label_value = item.partition("=")
            if not sep or not name.strip():
                raise typer.BadParameter(f"{item!r}: use name=value")
            labels[name.strip()] = label_value.strip()
    return labels


def describe(event: dict[str, Any]) -> str:
    """One line: id, start, kind, title, what it touched, link."""
    targets = list(event.get("hosts") or [])
    targets += [f"{k}={v}" for k, v in sorted((event.get("selector") or {}).items())]
    where = ",".join(targets) if targets else "all hosts"
    end = f" .. {event['end']}" if event.get("end") else ""
    link = f"\t{event['link']}" if event.get("link") else ""
    return f"{event['id']}\t{event['start']}{end}\t{event['kind']}\t{event['title']}\t{where}{link}"


HostsOpt = Annotated[
    list[str],
    typer.Option(
        "--hosts",
        help="Hosts touched: names and/or a label selector, comma-separated or repeated "
        "(web-1,web-2 or role=web). Default: every host.",
    ),
]
LabelOpt = Annotated[
    list[str], typer.Option("--label", help="Event labels, name=value (repeatable).")
]
StartOpt = Annotated[
    str | None, typer.Option(help="When it started: ISO 8601 or a duration ago (5m). Default now.")
]
EndOpt = Annotated[str | None, typer.Option(help="When it ended (optional), as --start.")]
OutputOpt = Annotated[str, typer.Option(help="text or json.")]


def _record(body: dict[str, Any], output: str) -> None:
    event = request("POST", "/api/v1/events", json=body, timeout=TIMEOUT).json()
    if output == "json":
        typer.echo(json.dumps(event, indent=2))
    else:
        typer.echo(f"recorded event {event['id']}: {describe(event)}")


def _body(
    kind: str, title: str | None, service: str | None, version: str | None,
    hosts: list[str], link: str | None, labels: list[str], start: str | None, end: str | None,
) -> dict[str, Any]:
    names, selector = parse_targets(hosts)
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "kind": kind, "hosts": names, "selector": selector, "labels": parse_labels(labels),
        "start": parse_time(start, now).isoformat(),
    }
    for key, value in (("title", title), ("service", service), ("version", version),
                       ("link", link)):
        if value:
            body[key] = value
    if end:
        body["end"] = parse_time(end, now).isoformat()
    return body


@app.command("deploy")
def deploy(
    service: Annotated[str, typer.Option(help="What was deployed, e.g. web.")],
    version: Annotated[str | None, typer.Option(help="Its version, e.g. $GIT_SHA.")] = None,
    hosts: HostsOpt = [],  # noqa: B006 (typer needs a list default)
    link: Annotated[str | None, typer.Option(help="URL of the pipeline run or release.")] = None,
    title: Annotated[
        str | None, typer.Option(help="Default: 'deploy <service> <version>'.")
    ] = None,
    label: LabelOpt = [],  # noqa: B006
    start: StartOpt = None,
    end: EndOpt = None,
    output: OutputOpt = "text",
) -> None:
    """Record a deploy (for CI/CD pipelines)."""
    _record(_body("deploy", title, service, version, hosts, link, label, start, end), output)


@app.command("add")
def add(
    kind: Annotated[str, typer.Option(help="config, incident, deploy or any other word.")],
    title: Annotated[str, typer.Option(help="What happened.")],
    service: Annotated[str | None, typer.Option()] = None,
    version: Annotated[str | None, typer.Option()] = None,
    hosts: HostsOpt = [],  # noqa: B006
    link: Annotated[str | None, typer.Option()] = None,
    label: LabelOpt = [],  # noqa: B006
    start: StartOpt = None,
    end: EndOpt = None,
    output: OutputOpt = "text",
) -> None:
    """Record any event (a configuration change, an incident, ...)."""
    _record(_body(kind, title, service, version, hosts, link, label, start, end), output)


@app.command("list")
def list_(
    since: Annotated[str, typer.Option(help="How far back: a duration (24h, 7d).")] = "7d",
    kind: Annotated[list[str], typer.Option("--kind", help="Only these kinds.")] = [],  # noqa: B006
    host: Annotated[str | None, typer.Option(help="Only events touching this host.")] = None,
    label: LabelOpt = [],  # noqa: B006
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    output: OutputOpt = "text",
) -> None:
    """List events, newest first."""
    params: list[tuple[str, str | int]] = [("start", f"now-{since}"), ("limit", limit)]
    params += [("kind", k) for k in kind]
    params += [("label", f"{k}={v}") for k, v in parse_labels(label).items()]
    if host:
        params.append(("host", host))
    events = request("GET", "/api/v1/events", params=params, timeout=TIMEOUT).json()
    if output == "json":
        typer.echo(json.dumps(events, indent=2))
        return
    for event in events:
        typer.echo(describe(event))


@app.command("delete")
def delete(event_id: int) -> None:
    """Delete an event (admin)."""
    request("DELETE", f"/api/v1/events/{event_id}", timeout=TIMEOUT)
    typer.echo(f"deleted event {event_id}")
