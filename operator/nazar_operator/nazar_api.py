"""Adapter: the Nazar configuration API (rules), with errors translated once.

``4xx`` answers become :class:`InvalidInputError` (the resource is wrong and
retrying will not help), except authentication failures, which — like
``5xx`` answers and connection errors — become :class:`TransientError`: the
operator's key or the API may be fixed without touching the resource.
``409`` answers — the rule belongs to another owner, or was made by hand —
become :class:`ConflictError`.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from nazar_common.errors import ConflictError, InvalidInputError, TransientError

log = logging.getLogger(__name__)


def _detail(response: httpx.Response) -> str:
    try:
        problem = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if not isinstance(problem, dict):
        return str(problem)[:500]
    detail = str(problem.get("detail") or problem.get("title") or response.reason_phrase)
    errors = problem.get("errors")
    if isinstance(errors, list) and errors:
        detail += ": " + "; ".join(
            f"{e.get('loc', '')}: {e.get('msg', '')}" for e in errors if isinstance(e, dict)
        )
    return detail


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


class NazarApi:
    """Rules in the Nazar API, over one pooled HTTP client."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 10.0) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "nazar-operator"},
            timeout=timeout,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise TransientError(f"Nazar API unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code in (401, 403):
            raise TransientError(
                f"Nazar API refused the operator's key ({response.status_code}): "
                f"{_detail(response)}"
            )
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(
                f"Nazar API answered {response.status_code}: {_detail(response)}",
                retry_after=_retry_after(response),
            )
        return response

    async def put_rule(
        self, name: str, body: dict[str, Any], owner: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Create or replace a rule owned by ``owner``; returns the stored rule
        (with ``version``) and whether it was created."""
        params = {"source": "kubernetes", **({"owner": owner} if owner else {})}
        response = await self._call("PUT", f"/api/v1/rules/{name}", json=body, params=params)
        if response.status_code == 409:
            raise ConflictError(_detail(response))
        if response.status_code >= 400:
            raise InvalidInputError(
                f"Nazar API rejected rule {name!r} ({response.status_code}): {_detail(response)}"
            )
        stored: dict[str, Any] = response.json()
        created = response.status_code == 201
        log.info(
            "rule applied",
            extra={"rule": name, "version": stored.get("version"), "rule_created": created},
        )
        return stored, created

    async def delete_rule(self, name: str, owner: str | None = None) -> bool:
        """Delete a rule owned by ``owner``; False when it did not exist (deleting
        is idempotent)."""
        params = {"owner": owner} if owner else {}
        response = await self._call("DELETE", f"/api/v1/rules/{name}", params=params)
        if response.status_code == 404:
            return False
        if response.status_code == 409:
            raise ConflictError(_detail(response))
        if response.status_code >= 400:
            raise InvalidInputError(
                f"Nazar API refused to delete rule {name!r} ({response.status_code}): "
                f"{_detail(response)}"
            )
        log.info("rule deleted", extra={"rule": name})
        return True

    async def firing(self, rule: str) -> tuple[int, str | None]:
        """How many alerts of ``rule`` fire now, and when it last fired (ISO time)."""
        response = await self._call(
            "GET", "/api/v1/alerts", params={"rule": rule, "state": "firing", "limit": 1000}
        )
        if response.status_code >= 400:
            raise InvalidInputError(f"Nazar API refused the alerts of {rule!r}: "
                                    f"{_detail(response)}")
        count = len(response.json()["items"])
        response = await self._call("GET", "/api/v1/alerts", params={"rule": rule, "limit": 50})
        if response.status_code >= 400:
            raise InvalidInputError(f"Nazar API refused the alerts of {rule!r}: "
                                    f"{_detail(response)}")
        fired = [str(a["fired_at"]) for a in response.json()["items"] if a.get("fired_at")]
        return count, max(fired, default=None)
