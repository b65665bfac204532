"""`python -m hub.tools.bench_ab` tells two variants of the pipeline apart: the one doing more work costs more."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from hub.pipeline.batch import Pipeline
from hub.tools.bench_ab import compare

used: list[str] = []
EXTRA_DECODES = {"A": 0, "B": 20}
_ingest_all = Pipeline.ingest_all


def _ingest_all_again(self: Pipeline, messages: Any, states: Any = None) -> Any:
    """Decodes and checks the chunk as the pipeline does, then again as many times as the variant asks."""
    for _ in range(EXTRA_DECODES[used[-1]]):
        _ingest_all(self, messages, states)
    return _ingest_all(self, messages, states)


def use(variant: str) -> None:
    """The variant module for the test (this one): B decodes and checks every chunk twenty more times."""
    used.append(variant)


def test_the_variant_doing_more_work_costs_more(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Pipeline, "ingest_all", _ingest_all_again)
    used.clear()
    compare(__name__, cases=30, events=1000, chunk=50, seed=2, store_cache=tmp_path)
    printed = capsys.readouterr().out
    # Same events, same outcome; chunks alternate which variant goes first.
    counts = re.findall(r"^([AB]): pipeline CPU per event [\d,]+ us, ([\d,]+) notifications$", printed, re.M)
    assert [variant for variant, _ in counts] == ["A", "B"]
    assert counts[0][1] == counts[1][1] != "0"
    assert used == ["A", "B", "B", "A"] * 10  # 20 chunks, each variant first in turn
    ratio = float(re.search(r"^B/A=([\d.]+)$", printed, re.M).group(1))
    assert ratio > 1.3
