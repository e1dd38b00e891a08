"""kmock's Kubernetes emulator with the object metadata an operator relies on.

kmock stores objects as plain merged dicts. A real API server also assigns
``metadata.uid`` and ``creationTimestamp`` on creation, moves
``resourceVersion`` on every write and ``generation`` on every change of
anything but ``status`` and ``metadata``; an object created through a
namespaced URL gets that namespace (kmock would store it without one, and
its watch streams would then never show the object's changes). This subclass adds those, so the
operator's ownership (uid) and ``observedGeneration`` are tested as they
work in a cluster.
"""

from __future__ import annotations

import copy
import datetime
import itertools
import uuid
from typing import Any

import kmock
from kmock._internal import enums, parsing, rendering

_parse_path = parsing.parse_path


def _parse_path_fixed(path: str) -> parsing.ParsedPath:
    """kmock 0.8 fails on ``/api/v1/namespaces`` (the list of namespaces, which
    kopf reads when it is given namespaces): it takes ``namespaces`` for the
    namespace marker of a namespaced path."""
    if path.rstrip("/") in ("/api/v1/namespaces",):
        return parsing.ParsedPath("", "v1", "namespaces")
    return _parse_path(path)


parsing.parse_path = _parse_path_fixed


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (``None`` deletes a key)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


class KubernetesServer(kmock.KubernetesEmulator):
    """kmock with uid, creationTimestamp, resourceVersion and generation."""

    _versions = itertools.count(1)

    def _stored(self, request: rendering.Request) -> dict[str, Any] | None:
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return dict(self.objects[key].raw)

    async def _handle(self, request: rendering.Request) -> Any:
        if (
            request.resource is not None
            and isinstance(request.data, dict)
            and request.subresource in (None, "status")
        ):
            data = request.data  # changed in place: the request is frozen
            meta = data.setdefault("metadata", {})
            if request.action == enums.action.CREATE:
                if request.namespace:
                    meta.setdefault("namespace", request.namespace)
                meta.update(
                    uid=str(uuid.uuid4()),
                    generation=1,
                    resourceVersion=str(next(self._versions)),
                    creationTimestamp=datetime.datetime.now(datetime.UTC).strftime(
                        "%Y-%m-%dT%H:%M:%SZ"
                    ),
                )
            elif request.action == enums.action.UPDATE and request.name is not None:
                old = self._stored(request)
                if old is not None:
                    meta["resourceVersion"] = str(next(self._versions))
                    new = merge_patch(old, data)
                    changed = {k: v for k, v in new.items() if k not in ("metadata", "status")}
                    before = {k: v for k, v in old.items() if k not in ("metadata", "status")}
                    if changed != before and request.subresource != "status":
                        meta["generation"] = int(old["metadata"].get("generation") or 1) + 1
                    meta.pop("uid", None)  # immutable, as in Kubernetes
        return await super()._handle(request)
