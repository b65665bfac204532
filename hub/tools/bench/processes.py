"""The processes a bench run starts and watches: the worker (health, CPU, peak memory, its batch metrics) and
the bare loop."""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

WORKER_READY_SECONDS = 120.0


def rss_peak_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    from hub.runtime.processes import spawn

    return spawn([sys.executable, "-m", "hub.cli", "worker"], log, env=env)


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    from hub.runtime.processes import became_healthy

    if not became_healthy(url, process, WORKER_READY_SECONDS):
        if process.poll() is not None:
            raise RuntimeError(f"worker exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        raise RuntimeError(f"worker not consuming after {WORKER_READY_SECONDS:.0f}s; see {log}")


def scrape_batches(web: str) -> tuple[float, float]:
    """(batches applied, seconds spent applying them) from the worker's Prometheus metrics; zeros if unknown."""
    batches = seconds = 0.0
    try:
        with urllib.request.urlopen(f"{web}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return batches, seconds
    for line in text.splitlines():
        if line.startswith("hub_batch_processing_seconds_count"):
            batches += float(line.rsplit(" ", 1)[1])
        elif line.startswith("hub_batch_processing_seconds_sum"):
            seconds += float(line.rsplit(" ", 1)[1])
    return batches, seconds


def wait_for_line(log: Path, line: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if log.exists() and line in log.read_text():
            return
        time.sleep(0.1)
    raise RuntimeError(f"no {line!r} in {log} after {timeout:.0f}s")
