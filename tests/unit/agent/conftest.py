"""Make ``nazar_agent`` importable when the project is not pip-installed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("nazar_agent") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "agent"))
