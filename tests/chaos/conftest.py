"""The chaos suite prints what each fault cost, after the test run."""

from __future__ import annotations

from typing import Any

from tests.support.chaos import Result, table

RESULTS: list[Result] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if RESULTS:
        terminalreporter.section("chaos: one fault at a time under agent load")
        terminalreporter.write_line(table(RESULTS))
