"""asyncpg connection pools configured from settings."""

from __future__ import annotations

import asyncpg

from nazar_common.errors import TransientError
from nazar_common.settings import CommonSettings

#: Errors meaning "the database is unreachable or restarting"; callers treat
#: them as transient.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ConnectionFailureError,
)


def is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, CONNECTION_ERRORS) or isinstance(
        exc, asyncpg.exceptions.PostgresConnectionError
    )


async def create_pool(
    settings: CommonSettings,
    application_name: str,
    *,
    min_size: int | None = None,
    max_size: int | None = None,
    reset_on_release: bool = True,
) -> asyncpg.Pool:
    """Create a pool; raises :class:`TransientError` when the server is unreachable.

    With ``reset_on_release=False`` a connection goes back to the pool
    without asyncpg's session-reset query (``RESET ALL``, ``UNLISTEN *``...),
    saving a round trip per use; asyncpg still ends an open transaction.
    Only for pools whose users leave no session state behind (no ``SET``,
    ``LISTEN`` or session advisory locks)."""
    try:
        pool = await asyncpg.create_pool(
            dsn=settings.database_url.get_secret_value(),
            min_size=min_size if min_size is not None else settings.db_pool_min,
            max_size=max_size if max_size is not None else settings.db_pool_max,
            statement_cache_size=settings.db_statement_cache_size,
            server_settings={"application_name": application_name},
            command_timeout=60,
            reset=None if reset_on_release else _keep_session,
        )
    except Exception as exc:
        if is_connection_error(exc):
            raise TransientError(f"database unreachable: {type(exc).__name__}") from exc
        raise
    assert pool is not None
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A pool ``reset`` that leaves the session as it is."""


async def connect(settings: CommonSettings, application_name: str) -> asyncpg.Connection:
    """A single connection (CLI commands, migrations, single-session servers)."""
    try:
        return await asyncpg.connect(
            dsn=settings.database_url.get_secret_value(),
            statement_cache_size=settings.db_statement_cache_size,
            server_settings={"application_name": application_name},
        )
    except Exception as exc:
        if is_connection_error(exc):
            raise TransientError(f"database unreachable: {type(exc).__name__}") from exc
        raise
