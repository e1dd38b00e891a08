"""API keys administration (admin scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from nazar_common.auth import Scope, generate_key
from nazar_common.db import keys
from nazar_common.errors import ConflictError, NotFoundError
from nazar_common.schemas.storable import Text
from nazar_ingest.deps import AppState, JsonObject, get_state, require, validated
from nazar_ingest.openapi import json_body

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])
Admin = Annotated[object, Depends(require(Scope.ADMIN))]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(default="", max_length=200)
    scopes: list[Scope] = Field(min_length=1)


class KeyOut(BaseModel):
    key_id: str
    name: str
    scopes: list[Scope]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None = None


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself. Shown only once.")


@router.get("", response_model=list[KeyOut])
async def list_keys(state: Annotated[AppState, Depends(get_state)], _: Admin) -> list[KeyOut]:
    rows = await state.pool.fetch(
        "SELECT key_id, name, scopes, created_at, revoked_at, last_used_at FROM api_keys "
        "ORDER BY created_at"
    )
    return [KeyOut(**dict(r)) for r in rows]


@router.post(
    "",
    response_model=KeyCreated,
    status_code=201,
    openapi_extra={"requestBody": json_body(KeyCreate)},
)
async def create_key(
    state: Annotated[AppState, Depends(get_state)], _: Admin, raw: JsonObject
) -> KeyCreated:
    body = validated(KeyCreate, raw, "key")
    new = generate_key()
    row = await state.pool.fetchrow(
        "INSERT INTO api_keys (key_id, secret_hash, name, scopes) VALUES ($1, $2, $3, $4) "
        "RETURNING key_id, name, scopes, created_at, revoked_at, last_used_at",
        new.key_id,
        new.secret_hash,
        body.name,
        sorted({s.value for s in body.scopes}),
    )
    return KeyCreated(**dict(row), key=new.plaintext)


@router.delete(
    "/{key_id}",
    status_code=204,
    responses={404: {"description": "No such active key"},
               409: {"description": "The last active admin key cannot be revoked"}},
)
async def revoke_key(
    key_id: Annotated[str, Path(max_length=100)],
    state: Annotated[AppState, Depends(get_state)],
    _: Admin,
) -> None:
    async with state.pool.acquire() as conn:
        outcome = await keys.revoke_key(conn, key_id)
    if outcome == "unknown":
        raise NotFoundError(f"no active key {key_id!r}")
    if outcome == "last_admin":
        raise ConflictError(keys.LAST_ADMIN_KEY)
    state.keys.forget(key_id)
