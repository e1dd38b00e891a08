"""``nazar rules``: list, apply and backtest alert rules through the API.

Uses ``NAZAR_API_URL`` and ``NAZAR_API_KEY`` (a ``read`` key suffices for
``list`` and ``test``; ``apply`` needs ``admin``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from nazar_cli.api import parse_time, request

app = typer.Typer(no_args_is_help=True)


def load_rule_files(path: Path) -> list[dict[str, Any]]:
    """Rules from a YAML or JSON file: one rule, a list, a ``{rules: [...]}``
    document, several YAML documents, or an ``AlertRule`` resource (its ``spec``)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}") from exc
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"{path} is not valid YAML/JSON: {exc}") from exc
    rules: list[dict[str, Any]] = []
    for doc in docs:
        if doc is None:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("rules"), list):
            items = doc["rules"]
        elif isinstance(doc, list):
            items = doc
        else:
            items = [doc]
        for item in items:
            if not isinstance(item, dict):
                raise typer.BadParameter(f"{path}: a rule must be a mapping")
            if item.get("kind") == "AlertRule" and isinstance(item.get("spec"), dict):
                spec = dict(item["spec"])
                spec.setdefault("name", (item.get("metadata") or {}).get("name"))
                item = spec
            rules.append(item)
    if not rules:
        raise typer.BadParameter(f"{path} contains no rule")
    return rules


def format_backtest(result: dict[str, Any]) -> list[str]:
    lines = [
        f"rule {result.get('rule')} ({result.get('kind')}): {result.get('series', 0)} series, "
        f"{result.get('points', 0)} points, {result.get('resolution')} data, "
        f"{result.get('start')} .. {result.get('end')}"
        + (" (series list truncated)" if result.get("truncated") else "")
    ]
    transitions = result.get("transitions") or []
    if not transitions:
        lines.append("no transitions: the rule would not have fired")
        return lines
    for t in transitions:
        value = t.get("value")
        shown = f"{value:.6g}" if isinstance(value, int | float) else "-"
        where = t.get("host", "")
        if t.get("labels"):
            where += " {" + ", ".join(f"{k}={v}" for k, v in sorted(t["labels"].items())) + "}"
        lines.append(
            f"{t['at']}  {t['from']:>8} -> {t['to']:<8} {where}  value={shown}"
            + (f"  ({t['explanation']})" if t.get("explanation") else "")
        )
    counts = result.get("counts") or {}
    lines.append(
        f"would have fired {counts.get('firing', 0)} time(s), resolved "
        f"{counts.get('resolved', 0)} time(s)"
    )
    return lines


@app.command("test")
def test(
    file: Annotated[Path, typer.Argument(help="YAML or JSON file with one or more rules.")],
    start: Annotated[
        str | None, typer.Option(help="ISO 8601 time or a duration ago (6h, 7d).")
    ] = None,
    end: Annotated[str | None, typer.Option(help="ISO 8601 time or a duration ago.")] = None,
    resolution: Annotated[str, typer.Option(help="auto, raw, 1m or 1h.")] = "auto",
    output: Annotated[str, typer.Option(help="text or json.")] = "text",
) -> None:
    """Backtest rules over stored history: when would they have fired and resolved?"""
    now = datetime.now(UTC)
    t_end = parse_time(end, now)
    t_start = parse_time(start, t_end - timedelta(days=1))
    results = []
    for rule in load_rule_files(file):
        body = {
            "rule": rule,
            "start": t_start.isoformat(),
            "end": t_end.isoformat(),
            "resolution": resolution,
        }
        results.append(request("POST", "/api/v1/rules/backtest", json=body).json())
    if output == "json":
        typer.echo(json.dumps(results if len(results) > 1 else results[0], indent=2))
        return
    for result in results:
        for line in format_backtest(result):
            typer.echo(line)


@app.command("apply")
def apply(file: Annotated[Path, typer.Argument(help="YAML or JSON file with rules.")]) -> None:
    """Create or replace rules (PUT /api/v1/rules/{name})."""
    for rule in load_rule_files(file):
        name = rule.get("name")
        if not name:
            raise typer.BadParameter("every rule needs a name")
        r = request("PUT", f"/api/v1/rules/{name}", json=rule)
        typer.echo(
            f"{'created' if r.status_code == 201 else 'applied'} rule {name} "
            f"(version {r.json().get('version')})"
        )


@app.command("list")
def list_(output: Annotated[str, typer.Option(help="text or json.")] = "text") -> None:
    """List rules."""
    rules = request("GET", "/api/v1/rules").json()
    if output == "json":
        typer.echo(json.dumps(rules, indent=2))
        return
    for r in rules:
        spec = r["spec"]
        state = "enabled" if spec.get("enabled", True) else "disabled"
        typer.echo(
            f"{r['name']}\t{spec['params']['kind']}\t{spec.get('metric') or '-'}\t"
            f"{spec.get('severity')}\t{state}\tv{r['version']}"
        )
