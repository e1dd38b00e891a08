"""No log call passes a reserved ``LogRecord`` attribute in ``extra``:
``logging`` raises ``KeyError`` for those, but only when the level is
enabled, so a test suite running at WARNING never sees it while the
services, at INFO, fail (ingest's storage set-up did, on a fresh database)."""

from __future__ import annotations

import ast
import dataclasses
import json
import logging
import queue
from pathlib import Path

import pytest

from nazar_common.settings import CommonSettings
from nazar_common.telemetry import setup_logging

ROOT = Path(__file__).resolve().parents[3]
SOURCES = ["libs", "services", "operator", "agent"]
RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _extra_keys(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for kw in node.keywords:
            if kw.arg == "extra" and isinstance(kw.value, ast.Dict):
                for key in kw.value.keys:
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        found.append((key.lineno, key.value))
    return found


def test_no_reserved_names_in_log_extras() -> None:
    bad = []
    files = [p for d in SOURCES for p in (ROOT / d).rglob("*.py") if ".venv" not in p.parts]
    assert files
    for path in files:
        for line, key in _extra_keys(ast.parse(path.read_text(), str(path))):
            if key in RESERVED:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {key!r}")
    assert not bad, "reserved LogRecord attributes used in extra=: " + ", ".join(bad)


def test_a_reserved_name_in_extra_is_namespaced_not_raised(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The JSON formatter's logger keeps a colliding key as ``extra.<key>``
    instead of raising ``KeyError`` in the caller (at every enabled level)."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.Logger.makeRecord)
    try:
        setup_logging(CommonSettings(log_level="DEBUG", log_format="json"), "nazar-test")
        log = logging.getLogger("nazar.test.extras")
        for level in (logging.DEBUG, logging.INFO, logging.WARNING):
            log.log(level, "saved", extra={"created": True, "name": "x", "message": "m",
                                            "rule": "r"})
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.Logger.makeRecord = saved[2]  # type: ignore[method-assign]
    assert [line["level"] for line in lines] == ["DEBUG", "INFO", "WARNING"]
    for line in lines:
        assert line["message"] == "saved"
        assert line["logger"] == "nazar.test.extras"
        assert line["extra.created"] is True
        assert line["extra.name"] == "x"
        assert line["extra.message"] == "m"
        assert line["rule"] == "r"
        assert isinstance(line["time"], str)


def test_a_value_json_cannot_take_does_not_lose_the_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A dataclass holding a queue (kopf's settings) used to make the
    formatter fail: the record was dropped with a "Logging error" on stderr."""

    @dataclasses.dataclass
    class Holder:
        queue: queue.SimpleQueue[int] = dataclasses.field(default_factory=queue.SimpleQueue)

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.Logger.makeRecord)
    try:
        setup_logging(CommonSettings(log_level="INFO", log_format="json"), "nazar-test")
        logging.getLogger("nazar.test").info("kept", extra={"holder": Holder(), "n": 1})
        logging.getLogger("kopf.test").info("kopf line", extra={"settings": Holder()})
        err = capsys.readouterr().err
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.Logger.makeRecord = saved[2]  # type: ignore[method-assign]
    assert "Logging error" not in err
    first, second = (json.loads(line) for line in err.splitlines())
    assert first["message"] == "kept" and first["n"] == 1 and first["holder"] == "<Holder>"
    assert second["message"] == "kopf line" and "settings" not in second
