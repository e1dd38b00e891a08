"""Annotation templates (``summary``, ``description``...) rendered with Jinja2
in a sandbox: rule authors cannot reach Python internals from a template."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

log = logging.getLogger(__name__)

_ENV = ImmutableSandboxedEnvironment(autoescape=False, trim_blocks=True, lstrip_blocks=True)


def _humanize(value: Any) -> str:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.4g}"


_ENV.filters["humanize"] = _humanize


@lru_cache(maxsize=4096)
def _compile(source: str) -> Any:
    return _ENV.from_string(source)


def render(annotations: Mapping[str, str], context: Mapping[str, Any]) -> dict[str, str]:
    """Render each annotation; a broken template renders as its source plus the error."""
    out: dict[str, str] = {}
    for key, source in annotations.items():
        try:
            out[key] = str(_compile(source).render(**context))[:4096]
        except TemplateError as exc:
            log.warning("annotation template failed", extra={"annotation": key, "error": str(exc)})
            out[key] = f"{source} [template error: {exc}]"
    return out
