"""Debian's Chromium for the browser tests: Playwright's own browser download cannot work on these machines."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_TIMEOUT_SECONDS = 900
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _apt(*args: str, deadline: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", *args],
        capture_output=True,
        text=True,
        timeout=max(1.0, deadline - time.monotonic()),
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def ensure_chromium() -> tuple[Path, float]:
    """The browser's path and how many seconds installing it took (0 when it was already there)."""
    if CHROMIUM.exists():
        return CHROMIUM, 0.0
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"{CHROMIUM} is missing and there is no apt-get to install Debian's chromium")
    started = time.monotonic()
    deadline = started + INSTALL_TIMEOUT_SECONDS
    install = ("install", "-y", "--no-install-recommends", "chromium")
    result = _apt(*install, deadline=deadline)
    if result.returncode != 0:  # a fresh machine has no package lists yet
        _apt("update", deadline=deadline)
        result = _apt(*install, deadline=deadline)
    if result.returncode != 0 or not CHROMIUM.exists():
        raise RuntimeError(
            f"installing Debian's chromium failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    return CHROMIUM, time.monotonic() - started


if __name__ == "__main__":
    path, seconds = ensure_chromium()
    print(f"{path} ready; installing took {seconds:.1f}s")
