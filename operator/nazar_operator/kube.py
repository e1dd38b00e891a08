"""Adapter: read and set a Deployment's replicas through its ``scale`` subresource.

Credentials come from kopf's login (:class:`kopf.ConnectionInfo`: the pod's
service account in a cluster, a kubeconfig outside), so the operator needs no
other Kubernetes client library.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from typing import Any

import httpx
import kopf

from nazar_common.errors import InvalidInputError, NotFoundError, TransientError


def _as_text(data: str | bytes) -> str:
    return data.decode() if isinstance(data, bytes) else data


def _ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if info.insecure:
        return False
    if info.ca_path:
        context = ssl.create_default_context(cafile=os.fsdecode(info.ca_path))
    elif info.ca_data:
        context = ssl.create_default_context(cadata=_as_text(info.ca_data))
    else:
        context = ssl.create_default_context()
    cert, key = info.certificate_path, info.private_key_path
    if info.certificate_data or info.private_key_data:
        # ssl loads client certificates from files only.
        with tempfile.TemporaryDirectory() as tmp:
            if info.certificate_data:
                cert = os.path.join(tmp, "tls.crt")
                with open(cert, "w") as fh:
                    fh.write(_as_text(info.certificate_data))
            if info.private_key_data:
                key = os.path.join(tmp, "tls.key")
                with open(key, "w") as fh:
                    fh.write(_as_text(info.private_key_data))
            if cert:
                context.load_cert_chain(os.fsdecode(cert), os.fsdecode(key) if key else None)
    elif cert:
        context.load_cert_chain(os.fsdecode(cert), os.fsdecode(key) if key else None)
    return context


def _client(info: kopf.ConnectionInfo) -> httpx.AsyncClient:
    verify = _ssl_context(info) if info.server.startswith("https") else True
    return httpx.AsyncClient(
        base_url=info.server.rstrip("/"),
        headers={**info.as_http_headers(), "User-Agent": "nazar-operator"},
        verify=verify,
        timeout=10.0,
    )


class DeploymentScale:
    """The ``apps/v1`` scale subresource of one Deployment."""

    def __init__(self, info: kopf.ConnectionInfo, namespace: str, name: str) -> None:
        self.namespace = namespace
        self.name = name
        self._path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"
        self._client = _client(info)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._client.request(method, self._path, **kwargs)
        except httpx.HTTPError as exc:
            raise TransientError(f"Kubernetes API unreachable: {exc}") from exc
        if response.status_code == 404:
            raise NotFoundError(f"no deployment {self.namespace}/{self.name}")
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"Kubernetes API answered {response.status_code}")
        if response.status_code >= 400:
            raise InvalidInputError(
                f"Kubernetes API refused {method} on {self._path} "
                f"({response.status_code}): {response.text[:300]}"
            )
        result: dict[str, Any] = response.json()
        return result

    async def replicas(self) -> int:
        scale = await self._call("GET")
        return int((scale.get("spec") or {}).get("replicas") or 0)

    async def set_replicas(self, replicas: int) -> None:
        await self._call(
            "PATCH",
            json={"spec": {"replicas": replicas}},
            headers={"Content-Type": "application/merge-patch+json"},
        )


class Peering:
    """The kopf peering object through which replicas elect one active operator.

    kopf pauses every replica but the one of highest priority among the live
    peers listed in the object, but does not create it: :meth:`ensure` does.
    """

    def __init__(self, info: kopf.ConnectionInfo, name: str, namespace: str | None) -> None:
        self.name = name
        self.namespace = namespace
        self._path = (
            "/apis/kopf.dev/v1/clusterkopfpeerings"
            if namespace is None
            else f"/apis/kopf.dev/v1/namespaces/{namespace}/kopfpeerings"
        )
        self._client = _client(info)

    async def peers(self) -> dict[str, Any]:
        """The peers the object lists (its status): identity → priority, lifetime, lastseen."""
        try:
            response = await self._client.get(f"{self._path}/{self.name}")
        except httpx.HTTPError as exc:
            raise TransientError(f"Kubernetes API unreachable: {exc}") from exc
        finally:
            await self._client.aclose()
        if response.status_code >= 400:
            raise TransientError(
                f"cannot read the peering object {self.name!r} ({response.status_code})"
            )
        status = response.json().get("status")
        return dict(status) if isinstance(status, dict) else {}

    async def ensure(self) -> bool:
        """Create the object unless it exists; True when it was created."""
        body = {
            "apiVersion": "kopf.dev/v1",
            "kind": "KopfPeering" if "/namespaces/" in self._path else "ClusterKopfPeering",
            "metadata": {
                "name": self.name,
                **({"namespace": self.namespace} if self.namespace else {}),
                "labels": {"app.kubernetes.io/part-of": "nazar"},
            },
        }
        try:
            response = await self._client.post(self._path, json=body)
        except httpx.HTTPError as exc:
            raise TransientError(f"Kubernetes API unreachable: {exc}") from exc
        finally:
            await self._client.aclose()
        if response.status_code == 409:
            return False
        if response.status_code >= 400:
            raise TransientError(
                f"cannot create the peering object {self.name!r} ({response.status_code}): "
                f"{response.text[:300]}"
            )
        return True
