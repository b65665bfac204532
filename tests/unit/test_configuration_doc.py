"""docs/configuration.md lists every setting the hub reads, by its environment variable and default."""

from __future__ import annotations

import re
from pathlib import Path

from hub.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented_and_nothing_else() -> None:
    listed = set(re.findall(r"^\| `(HUB_[A-Z0-9_]+)`", DOC.read_text(), flags=re.MULTILINE))
    expected = {f"HUB_{name.upper()}" for name in Settings.model_fields}
    assert listed == expected
