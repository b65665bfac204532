"""Child processes that die with their parent: the embedded broker and workers started by `hub up` or tests."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux: the kernel sends SIGTERM to the child if its parent dies, even by SIGKILL, so nothing is left behind.
    with contextlib.suppress(OSError):  # not Linux: rely on the parent's own clean-up
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(command: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            preexec_fn=_die_with_parent,
            # Its own session: Ctrl-C in a terminal reaches only the parent, which stops children in order
            # (the worker before the broker it needs to shut down cleanly).
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM, then SIGKILL after `timeout` seconds; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(5)


# A worker that exits with this code has refused its configuration (missing keys, invalid settings): starting
# it again would fail the same way.
CONFIGURATION_ERROR = 2


class RestartPolicy:
    """When to start a crashed child again, as a process supervisor would: after a delay that doubles with each
    crash close to the last (1 s, 2 s, 4 s, ... at most MAX_DELAY), and never after GIVE_UP_AFTER crashes within
    WINDOW seconds, which is a crash loop that waiting will not mend."""

    FIRST_DELAY = 1.0
    MAX_DELAY = 30.0
    WINDOW = 120.0
    GIVE_UP_AFTER = 5

    def __init__(self) -> None:
        self.crashes: list[float] = []

    def after_crash(self, at: float, exit_code: int | None) -> float | None:
        """Seconds to wait before starting again; None: give up."""
        if exit_code == CONFIGURATION_ERROR:
            return None
        self.crashes = [t for t in self.crashes if at - t < self.WINDOW] + [at]
        if len(self.crashes) >= self.GIVE_UP_AFTER:
            return None
        delay: float = min(self.FIRST_DELAY * 2 ** (len(self.crashes) - 1), self.MAX_DELAY)
        return delay


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]  # (host, port) for IPv4
        return port


def wait_for_port(
    host: str, port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"process exited with code {process.returncode} before listening on {host}:{port}"
            )
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


def became_healthy(
    url: str, process: subprocess.Popen[bytes], timeout: float, stopping: Callable[[], bool] = lambda: False
) -> bool:
    """Poll a worker's /health until it answers 200 (True), or the process exits, `stopping()` or time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping() and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False
