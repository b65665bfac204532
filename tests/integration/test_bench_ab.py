"""`python -m hub.tools.bench_ab` tells two variants of the pipeline apart: the one doing more work costs more."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import hub.pipeline.batch
from hub.tools.bench_ab import compare

used: list[str] = []


def use(variant: str) -> None:
    """The variant module for the test (this one): B looks each event up on its own, a lot more queries."""
    used.append(variant)
    hub.pipeline.batch.LOAD_STEP = 100 if variant == "A" else 1


def test_the_variant_doing_more_work_costs_more(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub.pipeline.batch, "LOAD_STEP", hub.pipeline.batch.LOAD_STEP)
    used.clear()
    compare(__name__, cases=30, events=200, chunk=50, seed=2, store_cache=tmp_path)
    printed = capsys.readouterr().out
    # Same events, same outcome; chunks alternate which variant goes first.
    counts = re.findall(r"^([AB]): pipeline CPU per event [\d,]+ us, ([\d,]+) notifications$", printed, re.M)
    assert [variant for variant, _ in counts] == ["A", "B"]
    assert counts[0][1] == counts[1][1] != "0"
    assert used == ["A", "B", "B", "A", "A", "B", "B", "A"]
    ratio = float(re.search(r"^B/A=([\d.]+)$", printed, re.M).group(1))
    assert ratio > 1.3
