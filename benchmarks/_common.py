"""Helpers shared by the benchmark processes (kept free of aiofutu and futu imports).

Every benchmark process talks to the runner with single lines on stdout that start with
:data:`PREFIX` followed by JSON, so that anything else a library prints is ignored.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

__all__ = (
    "PREFIX",
    "Usage",
    "emit",
    "fail",
    "now",
    "rss_kib",
)

PREFIX = "@@bench "

#: CLOCK_MONOTONIC on Linux: one clock for every process of the machine, so the runner, the
#: simulator and the clients can compare their timestamps directly.
now = time.monotonic


def emit(event: str, **fields: Any) -> None:
    """Send one message to the runner."""
    fields["event"] = event
    sys.stdout.write(PREFIX + json.dumps(fields) + "\n")
    sys.stdout.flush()


def fail(message: str) -> None:
    """Report an error to the runner and exit at once (no thread of a library can hold us)."""
    emit("error", message=message)
    os._exit(2)


def rss_kib() -> int:
    """Current resident set size of this process in KiB (0 when /proc is not there)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * (os.sysconf("SC_PAGE_SIZE") // 1024)


class Usage:
    """CPU time (user + system, all threads) and RSS of this process since :meth:`start`."""

    def __init__(self) -> None:
        self.cpu0 = 0.0
        self.maxrss0 = 0
        self.rss0 = 0

    def start(self) -> None:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu0 = ru.ru_utime + ru.ru_stime
        self.maxrss0 = ru.ru_maxrss
        self.rss0 = rss_kib()

    def stop(self) -> dict[str, float]:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "cpu_s": ru.ru_utime + ru.ru_stime - self.cpu0,
            # ru_maxrss is in KiB on Linux
            "maxrss_kib": float(ru.ru_maxrss),
            "maxrss_at_start_kib": float(self.maxrss0),
            "rss_at_start_kib": float(self.rss0),
            "rss_kib": float(rss_kib()),
        }
