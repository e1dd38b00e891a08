#!/usr/bin/env python3
"""Print the configuration reference (every ``NAZAR_*`` variable) as Markdown.

The README's configuration section is generated with this script; a test
checks that the two agree.
"""

from __future__ import annotations

import importlib
import sys
from datetime import timedelta
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

#: (deployable, module, class); the first is the shared base.
DEPLOYABLES = [
    ("all services", "nazar_common.settings", "CommonSettings"),
    ("nazar-ingest", "nazar_ingest.settings", "IngestSettings"),
    ("nazar-analyzer", "nazar_analyzer.settings", "AnalyzerSettings"),
    ("nazar-notifier", "nazar_notifier.settings", "NotifierSettings"),
    ("nazar (CLI)", "nazar_cli.settings", "CliSettings"),
    ("nazar-operator", "nazar_operator.settings", "OperatorSettings"),
    ("nazar-agent", "nazar_agent.settings", "AgentSettings"),
]


def _default(value: Any) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, timedelta):
        secs = int(value.total_seconds())
        for iso, size in (("P{}D", 86400), ("PT{}H", 3600), ("PT{}M", 60)):
            if secs % size == 0 and secs >= size:
                return f"`{iso.format(secs // size)}`"
        return f"`{secs}`"
    if value in ("", None):
        return "(empty)"
    if isinstance(value, list | dict):
        import json

        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def load(module: str, name: str) -> type[BaseSettings] | None:
    try:
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]
    except (ImportError, AttributeError):
        return None


def rows() -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []
    base = load(*DEPLOYABLES[0][1:])
    assert base is not None
    base_fields = set(base.model_fields)
    for deployable, module, name in DEPLOYABLES:
        cls = load(module, name)
        if cls is None:
            continue
        prefix = cls.model_config.get("env_prefix", "")
        for field, info in cls.model_fields.items():
            if cls is not base and issubclass(cls, base) and field in base_fields:
                continue
            out.append(
                (
                    f"`{(prefix + field).upper()}`",
                    deployable,
                    _default(info.default_factory() if info.default_factory else info.default),
                    (info.description or "").replace("|", "\\|"),
                )
            )
    return out


def markdown() -> str:
    lines = ["| variable | used by | default | meaning |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows()]
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def render_into(text: str) -> str:
    """``text`` with the part between the settings markers regenerated."""
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{markdown()}{END}{tail}"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        path = sys.argv[2]
        with open(path, encoding="utf-8") as fh:
            original = fh.read()
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(render_into(original))
    else:
        sys.stdout.write(markdown())
