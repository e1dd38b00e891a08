"""Who the caller is: the key's name and scopes (any valid key)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from nazar_common.auth import Scope, grants
from nazar_ingest.deps import require
from nazar_ingest.security import Principal

router = APIRouter(tags=["keys"])
AnyKey = Annotated[Principal, Depends(require(None))]


@router.get(
    "/api/v1/auth/whoami",
    summary="The calling key: id, name, scopes and what they grant",
    responses={401: {"description": "Missing or invalid API key"}},
)
async def whoami(principal: AnyKey) -> dict[str, Any]:
    """Answers for a key of any scope, so a client can show only what the
    key may do (``grants``: ``ingest``, ``read``, ``admin``, ``rules``)."""
    return {
        "key_id": principal.key_id,
        "name": principal.name,
        "scopes": sorted(principal.scopes),
        "grants": {scope.value: grants(principal.scopes, scope) for scope in Scope},
    }
