"""Is an alert silenced (by a silence or a recurring mute window) at a given time?"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from nazar_common.schemas.silences import MuteWindowSpec, Silence


@dataclass
class Silencer:
    silences: list[Silence] = field(default_factory=list)
    mute_windows: list[MuteWindowSpec] = field(default_factory=list)

    def silenced_by(self, labels: dict[str, str], when: datetime) -> str | None:
        """``silence:<id>`` or ``mute-window:<name>`` of the first that applies, else None."""
        for silence in self.silences:
            if silence.matches(labels, when):
                return f"silence:{silence.id}"
        for window in self.mute_windows:
            if window.matches(labels, when):
                return f"mute-window:{window.name}"
        return None
