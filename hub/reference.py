"""Reference data that operators change without a code change: the units file."""

from __future__ import annotations

import json

from hub.settings import Settings
from routing.units import DEFAULT_UNITS_FILE, UnitDirectory


def load_units(settings: Settings) -> UnitDirectory:
    path = settings.units_file or DEFAULT_UNITS_FILE
    return UnitDirectory.from_mapping(json.loads(path.read_text(encoding="utf-8")))
