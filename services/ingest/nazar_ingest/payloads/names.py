"""Mapping foreign metric and label names onto Nazar's naming rules.

Metric names may hold ``[a-zA-Z0-9_.:]`` and label names ``[a-zA-Z0-9_]``
(``nazar_common.schemas.names``). Other characters become ``_`` and a name
that would start with a digit, ``.`` or ``:`` gets a leading ``_``: OTel's
``host.name`` attribute becomes the label ``host_name``, Telegraf's
``disk-io`` measurement the metric prefix ``disk_io``.
"""

from __future__ import annotations

import re
from functools import lru_cache

from nazar_common.schemas.names import LABEL_NAME_RE, METRIC_NAME_RE

_NOT_METRIC = re.compile(r"[^a-zA-Z0-9_.:]")
_NOT_LABEL = re.compile(r"[^a-zA-Z0-9_]")


def _lead(name: str) -> str:
    first = name[0]
    return name if first == "_" or ("a" <= first.lower() <= "z") else "_" + name


@lru_cache(maxsize=8192)
def metric_name(raw: str) -> str | None:
    """``raw`` made a valid metric name; None if empty or too long."""
    if not raw:
        return None
    name = _lead(_NOT_METRIC.sub("_", raw))
    return name if METRIC_NAME_RE.match(name) else None


@lru_cache(maxsize=8192)
def label_name(raw: str) -> str | None:
    """``raw`` made a valid label name; None if empty or too long."""
    if not raw:
        return None
    name = _lead(_NOT_LABEL.sub("_", raw))
    return name if LABEL_NAME_RE.match(name) else None


def strip_port(instance: str) -> str:
    """``host:9100`` -> ``host``; ``[::1]:9100`` -> ``::1``; ``http://h:80/x`` -> ``h``."""
    if "://" in instance:
        instance = instance.split("://", 1)[1].split("/", 1)[0]
    if instance.startswith("["):
        return instance[1:].split("]", 1)[0]
    if instance.count(":") == 1:
        return instance.split(":", 1)[0]
    return instance
