"""benchmarks/ingest.py runs as its docstring says and prints its figures (how fast is for it to say)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIGURE = r"(\d+\.\d)"
ROW = re.compile(rf"^(validated|hot path) +{FIGURE} +{FIGURE} +{FIGURE}$")
LAST_LINE = re.compile(rf"^ingest_us={FIGURE} baseline_us={FIGURE} target_us=25$")


def test_the_benchmark_prints_decode_rules_and_total_for_both_paths() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/ingest.py", "--events", "96", "--repeat", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert "48 event types, 96 events a run" in lines[0]
    rows = {match[1]: [float(f) for f in match.groups()[1:]] for line in lines if (match := ROW.match(line))}
    assert set(rows) == {"validated", "hot path"}
    assert all(figure > 0 for figures in rows.values() for figure in figures)
    last = LAST_LINE.match(lines[-1])
    assert last is not None, lines[-1]
    assert (float(last[1]), float(last[2])) == (rows["hot path"][2], rows["validated"][2])
