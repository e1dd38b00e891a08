"""Naming rules for metrics and labels, shared by every ingestion path."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from nazar_common.schemas.storable import text_problem

METRIC_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_.:]{0,199}$"
LABEL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]{0,99}$"
HOST_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,252}$"
MAX_LABEL_VALUE_LENGTH = 1024
MAX_LABELS = 32


def _compile(pattern: str) -> re.Pattern[str]:
    """The pattern for Python's ``re``, where ``$`` also matches before a
    trailing newline: ``\\Z`` is the end of the text, as ``$`` is for the
    JSON Schema (and pydantic) readers of the same pattern."""
    assert pattern.endswith("$")
    return re.compile(pattern[:-1] + r"\Z")


METRIC_NAME_RE = _compile(METRIC_NAME_PATTERN)
LABEL_NAME_RE = _compile(LABEL_NAME_PATTERN)
HOST_RE = _compile(HOST_PATTERN)


class LabelProblem(NamedTuple):
    name: str  # the label, or "" for the set as a whole
    message: str
    #: A size limit (too many labels, a value too long) rather than text
    #: that cannot be stored at all.
    limit: bool


def label_values_problem(labels: Mapping[str, object]) -> LabelProblem | None:
    """The first reason ``labels`` cannot be stored, or None if they can.
    Label names are checked (or mapped) by the caller."""
    if len(labels) > MAX_LABELS:
        return LabelProblem("", f"at most {MAX_LABELS} labels", True)
    for name, value in labels.items():
        if not isinstance(value, str):
            return LabelProblem(name, "label value must be a string", False)
        if len(value) > MAX_LABEL_VALUE_LENGTH:
            return LabelProblem(name, f"label value longer than {MAX_LABEL_VALUE_LENGTH}", True)
        problem = text_problem(value)
        if problem is not None:
            return LabelProblem(name, f"label value {problem}", False)
    return None
