"""CRUD for stored configuration: alert rules and notification channels.

Rules and channels are addressed by name. ``PUT`` creates or replaces (what
GitOps tools and the operator use); ``POST`` creates and answers 409 if the
name exists. A client that manages objects (the Kubernetes operator) names
itself with ``?owner=``: the owner is stored on creation, and a ``PUT`` or
``DELETE`` naming another owner than the stored one — or an object made by
hand, which has none — is refused with 409, so nothing is adopted or removed
by mistake. Requests without ``owner`` (people, scripts) may change any
object and keep its owner. Objects the operator stored before owners existed
(source ``kubernetes``, no owner) go to the first owner that claims them.
Channel secrets are write-only: responses mask them, and a masked value sent
back in a ``PUT`` keeps the stored secret. URLs in channel configurations are
shown in full to admin keys only: to other keys with their credentials and
secret-looking parameters masked.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

import asyncpg
import orjson
from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from nazar_common.auth import Scope
from nazar_common.errors import ConflictError, InvalidInputError, NotFoundError
from nazar_common.redaction import mask_urls
from nazar_common.schemas.config import NAME_PATTERN, ChannelSpec, RuleSpec
from nazar_ingest.deps import AppState, JsonObject, get_state, require, validated
from nazar_ingest.openapi import json_body
from nazar_ingest.security import Principal

router = APIRouter(tags=["configuration"])
Reader = Annotated[Principal, Depends(require(Scope.READ))]
Name = Annotated[str, Path(pattern=NAME_PATTERN)]

MASK = "**********"
COLUMNS = "id, name, version, source, owner, created_at, updated_at, spec::text AS spec"
Owner = Annotated[
    str | None,
    Query(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$",
        description="The managing client's identifier (the operator: its resource's uid). "
        "Stored on creation; a request naming another owner than the stored one is refused "
        "with 409.",
    ),
]
SpecT = TypeVar("SpecT", RuleSpec, ChannelSpec)


def _public(spec: BaseModel) -> dict[str, Any]:
    """JSON for responses: secrets masked."""
    return spec.model_dump(mode="json", by_alias=True)


def _private(spec: BaseModel) -> str:
    """JSON for the database: secrets in clear (the notifier needs them)."""

    def reveal(value: Any) -> Any:
        if hasattr(value, "get_secret_value"):
            return value.get_secret_value()
        if isinstance(value, dict):
            return {k: reveal(v) for k, v in value.items()}
        if isinstance(value, list):
            return [reveal(v) for v in value]
        return value

    return orjson.dumps(reveal(spec.model_dump(mode="python", by_alias=True)), default=str).decode()


def _keep_masked(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in new.items():
        if value == MASK and key in old:
            out[key] = old[key]
        elif isinstance(value, dict) and isinstance(old.get(key), dict):
            out[key] = _keep_masked(value, old[key])
        else:
            out[key] = value
    return out


class _Resource(Generic[SpecT]):
    def __init__(self, table: str, model: type[SpecT], *, has_urls: bool = False) -> None:
        self.table = table
        self.model = model
        #: Whether specs may hold URLs with credentials (masked but to admins).
        self.has_urls = has_urls

    def parse(self, raw: dict[str, Any]) -> SpecT:
        return validated(self.model, raw, self.table[:-1])

    def out(self, row: asyncpg.Record, reader: Principal | None = None) -> dict[str, Any]:
        """A stored object as the API shows it to ``reader`` (None: an admin)."""
        spec = self.model.model_validate(orjson.loads(row["spec"]))
        public = _public(spec)
        if self.has_urls and reader is not None and Scope.ADMIN not in reader.scopes:
            public = mask_urls(public)
        return {
            "id": row["id"],
            "name": row["name"],
            "version": row["version"],
            "source": row["source"],
            "owner": row["owner"],
            "created_at": row["created_at"].isoformat(),
            "updated_at": row["updated_at"].isoformat(),
            "spec": public,
        }

    async def list(self, pool: asyncpg.Pool, reader: Principal) -> list[dict[str, Any]]:
        rows = await pool.fetch(
            f"SELECT {COLUMNS} FROM {self.table} ORDER BY name"
        )
        return [self.out(r, reader) for r in rows]

    async def get(self, pool: asyncpg.Pool, name: str, reader: Principal) -> dict[str, Any]:
        row = await pool.fetchrow(
            f"SELECT {COLUMNS} FROM {self.table} WHERE name = $1", name
        )
        if row is None:
            raise NotFoundError(f"no {self.table[:-1]} named {name!r}")
        return self.out(row, reader)

    async def create(self, pool: asyncpg.Pool, raw: dict[str, Any]) -> dict[str, Any]:
        spec = self.parse(raw)
        row = await pool.fetchrow(
            f"INSERT INTO {self.table} (name, spec) VALUES ($1, $2::jsonb) "
            f"ON CONFLICT (name) DO NOTHING RETURNING {COLUMNS}",
            spec.name,
            _private(spec),
        )
        if row is None:
            raise ConflictError(f"a {self.table[:-1]} named {spec.name!r} exists; use PUT")
        return self.out(row)

    def _check_owner(self, name: str, stored: asyncpg.Record, owner: str | None) -> None:
        """409 unless ``owner`` is None (a person) or the stored owner.

        An object the operator stored before owners existed (source
        ``kubernetes``, no owner) goes to the first owner that claims it.
        """
        if owner is None or stored["owner"] == owner:
            return
        if stored["owner"] is None and stored["source"] == "kubernetes":
            return
        holder = (
            f"owner {stored['owner']!r}" if stored["owner"] else "no owner (it was made by hand)"
        )
        raise ConflictError(
            f"the {self.table[:-1]} {name!r} has {holder}, not {owner!r}: left unchanged"
        )

    async def put(
        self,
        pool: asyncpg.Pool,
        name: str,
        raw: dict[str, Any],
        source: str = "api",
        owner: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        raw = {**raw, "name": raw.get("name", name)}
        if raw["name"] != name:
            raise InvalidInputError(f"the body names {raw['name']!r} but the URL {name!r}")
        async with pool.acquire() as conn, conn.transaction():
            old = await conn.fetchrow(
                f"SELECT spec::text AS spec, owner, source FROM {self.table} "
                f"WHERE name = $1 FOR UPDATE",
                name,
            )
            if old is not None:
                self._check_owner(name, old, owner)
                raw = _keep_masked(raw, orjson.loads(old["spec"]))
            spec = self.parse(raw)
            row = await conn.fetchrow(
                f"INSERT INTO {self.table} (name, spec, source, owner) "
                f"VALUES ($1, $2::jsonb, $3, $4) "
                f"ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec, source = EXCLUDED.source, "
                f"owner = coalesce({self.table}.owner, EXCLUDED.owner), "
                f"version = {self.table}.version + "
                f"(({self.table}.spec IS DISTINCT FROM EXCLUDED.spec)::int), updated_at = now() "
                f"WHERE {self.table}.spec IS DISTINCT FROM EXCLUDED.spec "
                f"OR ({self.table}.owner IS NULL AND EXCLUDED.owner IS NOT NULL) "
                f"RETURNING {COLUMNS}",
                name,
                _private(spec),
                source,
                owner,
            )
            if row is None:  # unchanged
                row = await conn.fetchrow(
                    f"SELECT {COLUMNS} FROM {self.table} WHERE name = $1", name
                )
        return self.out(row), old is None

    async def delete(self, pool: asyncpg.Pool, name: str, owner: str | None = None) -> None:
        async with pool.acquire() as conn, conn.transaction():
            stored = await conn.fetchrow(
                f"SELECT owner, source FROM {self.table} WHERE name = $1 FOR UPDATE", name
            )
            if stored is None:
                raise NotFoundError(f"no {self.table[:-1]} named {name!r}")
            self._check_owner(name, stored, owner)
            await conn.execute(f"DELETE FROM {self.table} WHERE name = $1", name)


RULES = _Resource("rules", RuleSpec)
CHANNELS = _Resource("channels", ChannelSpec, has_urls=True)


def _routes(
    resource: _Resource[Any], path: str, model: type[BaseModel], write: Scope = Scope.ADMIN
) -> None:
    """CRUD routes; writing needs the ``write`` scope."""
    tag = [path.strip("/")]
    writer = [Depends(require(write))]

    @router.get(f"/api/v1/{path}", tags=tag, summary=f"List {path}")
    async def list_(state: Annotated[AppState, Depends(get_state)], reader: Reader) -> Any:
        return await resource.list(state.pool, reader)

    @router.get(f"/api/v1/{path}/{{name}}", tags=tag, summary=f"Get one of {path}")
    async def get_(
        name: Name, state: Annotated[AppState, Depends(get_state)], reader: Reader
    ) -> Any:
        return await resource.get(state.pool, name, reader)

    @router.post(
        f"/api/v1/{path}",
        tags=tag,
        status_code=201,
        summary=f"Create one of {path}",
        dependencies=writer,
        openapi_extra={"requestBody": json_body(model)},
        responses={409: {"description": "The name exists; use PUT to replace"}},
    )
    async def create_(
        state: Annotated[AppState, Depends(get_state)], body: JsonObject
    ) -> Any:
        return await resource.create(state.pool, body)

    @router.put(
        f"/api/v1/{path}/{{name}}",
        tags=tag,
        summary=f"Create or replace one of {path}",
        dependencies=writer,
        openapi_extra={"requestBody": json_body(model)},
        responses={
            201: {"description": "Created", "content": {"application/json": {}}},
            409: {"description": "The object has another owner than the one named"},
        },
    )
    async def put_(
        name: Name,
        state: Annotated[AppState, Depends(get_state)],
        body: JsonObject,
        source: Annotated[
            str,
            Query(
                pattern=r"^[a-z][a-z0-9-]{0,31}$",
                description="Who manages this object, e.g. `kubernetes` for the operator.",
            ),
        ] = "api",
        owner: Owner = None,
    ) -> Any:
        out, created = await resource.put(state.pool, name, body, source, owner)
        return JSONResponse(out, status_code=201 if created else 200)

    @router.delete(
        f"/api/v1/{path}/{{name}}",
        tags=tag,
        status_code=204,
        summary=f"Delete one of {path}",
        dependencies=writer,
        responses={409: {"description": "The object has another owner than the one named"}},
    )
    async def delete_(
        name: Name,
        state: Annotated[AppState, Depends(get_state)],
        owner: Owner = None,
    ) -> None:
        await resource.delete(state.pool, name, owner)


_routes(RULES, "rules", RuleSpec, Scope.RULES)
_routes(CHANNELS, "channels", ChannelSpec)
