"""Make the analyzer package importable when the project is not installed."""

from __future__ import annotations

import sys
from pathlib import Path

_SRC = Path(__file__).resolve().parents[3] / "services" / "analyzer"
if str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))
