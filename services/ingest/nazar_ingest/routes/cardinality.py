"""``GET /api/v1/cardinality``: where the series are (read scope).

Shows the store's series count against the cardinality budgets
(``NAZAR_SERIES_LIMIT_PER_HOST``, ``NAZAR_SERIES_LIMIT``) and the hosts,
metrics and label names with the most series: the place to look when a
sender starts minting a series per request id.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from nazar_common.auth import Scope
from nazar_common.db import queries
from nazar_common.errors import InvalidInputError
from nazar_common.schemas.names import HOST_RE
from nazar_ingest.deps import AppState, connection, get_state, require

router = APIRouter(tags=["query"])


@router.get(
    "/api/v1/cardinality",
    summary="Series counts: the top hosts, metrics and label names, and the budgets",
    responses={
        400: {"description": "Invalid parameters (problem+json)"},
        401: {"description": "Missing or invalid API key"},
        403: {"description": "The key lacks the read scope"},
    },
)
async def cardinality(
    state: Annotated[AppState, Depends(get_state)],
    _: Annotated[object, Depends(require(Scope.READ))],
    limit: Annotated[int, Query(ge=1, le=1000, description="Rows per list.")] = 10,
    host: Annotated[
        str | None, Query(description="Only this host's series (its metrics and labels).")
    ] = None,
) -> Response:
    if host is not None and not HOST_RE.match(host):
        raise InvalidInputError(f"host {host[:70]!r} is not a valid host name")
    async with connection(state) as conn:
        body: dict[str, Any] = await queries.cardinality(conn, limit, host or None)
    s = state.settings
    body["limits"] = {"per_host": s.series_limit_per_host or None,
                      "global": s.series_limit or None}
    for row in body["hosts"]:
        row["used"] = (round(row["series"] / s.series_limit_per_host, 4)
                       if s.series_limit_per_host else None)
    return Response(orjson.dumps(body), media_type="application/json")
