"""API keys administration (admin scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from nazar_common.auth import Scope, generate_key
from nazar_common.errors import NotFoundError
from nazar_ingest.deps import AppState, get_state, require

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])
Admin = Annotated[object, Depends(require(Scope.ADMIN))]


class KeyCreate(BaseModel):
    name: str = Field(default="", max_length=200)
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


@router.post("", response_model=KeyCreated, status_code=201)
async def create_key(
    body: KeyCreate, state: Annotated[AppState, Depends(get_state)], _: Admin
) -> KeyCreated:
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


@router.delete("/{key_id}", status_code=204)
async def revoke_key(key_id: str, state: Annotated[AppState, Depends(get_state)], _: Admin) -> None:
    done = await state.pool.fetchval(
        "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL "
        "RETURNING key_id",
        key_id,
    )
    if done is None:
        raise NotFoundError(f"no active key {key_id!r}")
    state.keys.forget(key_id)
