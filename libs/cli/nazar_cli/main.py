"""``nazar``: the administration command line."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from nazar_cli import dlq, events, forecast, rules, silences, slo
from nazar_cli.settings import CliSettings
from nazar_common.auth import Scope, generate_key
from nazar_common.db import keys
from nazar_common.db.backends import Retention, backend_for
from nazar_common.db.migrate import migrate as run_migrations
from nazar_common.db.pool import connect

app = typer.Typer(help="Nazar administration.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(rules.app, name="rules", help="Alert rules.")
app.add_typer(silences.app, name="silences", help="Notification silences.")
app.add_typer(dlq.app, name="dlq", help="Dead-letter queues.")
app.add_typer(events.app, name="events", help="Deploys and other events.")
app.command("forecast")(forecast.forecast)
app.add_typer(slo.app, name="slo", help="Service level objectives.")
app.add_typer(slo.report_app, name="report", help="Availability and monthly reports.")


def _settings() -> CliSettings:
    return CliSettings()


@app.command()
def migrate() -> None:
    """Apply database migrations (safe to run from several places at once)."""

    async def run() -> None:
        settings = _settings()
        conn = await connect(settings, "nazar-cli")
        try:
            backend, applied = await run_migrations(conn, settings.storage_backend)
            await backend_for(backend).configure(
                conn,
                Retention(settings.retention_raw, settings.retention_1m, settings.retention_1h),
            )
        finally:
            await conn.close()
        typer.echo(f"storage backend: {backend}; migrations applied: {applied}")

    asyncio.run(run())


@keys_app.command("create")
def keys_create(
    scope: Annotated[list[Scope], typer.Option(help="ingest, read, rules or admin; repeatable.")],
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
) -> None:
    """Create a key. The key is printed once, alone on the last line."""

    async def run() -> str:
        settings = _settings()
        conn = await connect(settings, "nazar-cli")
        try:
            await run_migrations(conn, settings.storage_backend)
            new = generate_key()
            await conn.execute(
                "INSERT INTO api_keys (key_id, secret_hash, name, scopes) VALUES ($1, $2, $3, $4)",
                new.key_id,
                new.secret_hash,
                name,
                sorted({s.value for s in scope}),
            )
        finally:
            await conn.close()
        return new.plaintext

    plaintext = asyncio.run(run())
    typer.echo(
        f"created key with scope(s) {', '.join(sorted(s.value for s in scope))}; "
        "store it now, it is not shown again:",
        err=False,
    )
    typer.echo(plaintext)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never their secrets)."""

    async def run() -> None:
        conn = await connect(_settings(), "nazar-cli")
        try:
            rows = await conn.fetch(
                "SELECT key_id, name, scopes, created_at, revoked_at FROM api_keys "
                "ORDER BY created_at"
            )
        finally:
            await conn.close()
        for r in rows:
            state = f"revoked {r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else "active"
            typer.echo(f"{r['key_id']}\t{','.join(r['scopes'])}\t{state}\t{r['name']}")

    asyncio.run(run())


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (the part after ``nzr_``)."""

    async def run() -> keys.Revocation:
        conn = await connect(_settings(), "nazar-cli")
        try:
            return await keys.revoke_key(conn, key_id)
        finally:
            await conn.close()

    outcome = asyncio.run(run())
    if outcome == "unknown":
        typer.echo(f"no active key {key_id}", err=True)
        raise typer.Exit(1)
    if outcome == "last_admin":
        typer.echo(f"not revoked: {keys.LAST_ADMIN_KEY}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


if __name__ == "__main__":
    app()
