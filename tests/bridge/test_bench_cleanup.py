"""The bridge benchmark leaves nothing behind: its nats-server, simulator and bridge die with it.

``benchmarks/client_bridge.py`` starts three processes of its own. Killed outright (the runner's
timeout, a cancelled run) or terminated, none of them may stay behind on the machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc and relies on PR_SET_PDEATHSIG"
)


def children_of(pid: int) -> set[int]:
    """Live processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def start_benchmark(tmp: Path) -> tuple[subprocess.Popen[bytes], set[int]]:
    """The latency mode (long enough not to end by itself), once its 3 children run.

    Its temporary store goes under ``tmp``: a SIGKILLed benchmark cannot remove it itself.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.client_bridge", "latency", "--seconds", "120"],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # as the runner starts it
    )
    deadline = time.monotonic() + 40
    kids: set[int] = set()
    while time.monotonic() < deadline and proc.poll() is None:
        kids = children_of(proc.pid)
        if len(kids) >= 3:  # nats-server, aiofutu sim, aiofutu bridge
            return proc, kids
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    pytest.fail(f"the benchmark did not start its 3 processes (status {proc.poll()})")


def wait_gone(pids: set[int], timeout: float = 15) -> set[int]:
    deadline = time.monotonic() + timeout
    left = {p for p in pids if alive(p)}
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = {p for p in left if alive(p)}
    return left


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
@pytest.mark.usefixtures("nats_binary")
def test_bridge_benchmark_children_die_with_it(signum: int, tmp_path: Path) -> None:
    """SIGKILL of the benchmark process alone (not its group), or SIGTERM: no child stays."""
    proc, kids = start_benchmark(tmp_path)
    try:
        os.kill(proc.pid, signum)
        proc.wait(20)
        left = wait_gone(kids)
        assert not left, f"left behind after {signal.Signals(signum).name}: {sorted(left)}"
    finally:
        for pid in kids:  # only ours, by id, should the test fail
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
