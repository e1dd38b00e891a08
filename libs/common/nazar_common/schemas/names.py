"""Naming rules for metrics and labels, shared by every ingestion path."""

from __future__ import annotations

import re

METRIC_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_.:]{0,199}$"
LABEL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]{0,99}$"
HOST_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,252}$"
MAX_LABEL_VALUE_LENGTH = 1024
MAX_LABELS = 32

METRIC_NAME_RE = re.compile(METRIC_NAME_PATTERN)
LABEL_NAME_RE = re.compile(LABEL_NAME_PATTERN)
HOST_RE = re.compile(HOST_PATTERN)
