"""The simulator's tape across restarts: ``SimConfig(state_file=...)``, ``aiofutu sim --state``.

A real OpenD restart does not rewind the market: trade counters and prices carry on. With a
state file the simulator does the same. It keeps, per security, the trade counter, the price
walk, the last timestamp, the ticks of its tape (what ``Qot_GetTicker`` serves) and what its
lazily made history still needs; a restarted simulator continues each security from there, so a
client that reconnects sees counters above the last ones and can backfill without a hole.

The file is JSON, written atomically (a temporary file in the same directory, flushed to disk,
then renamed over the old one) when the simulator starts, every ``state_interval`` seconds and
when it stops, so a crash at any moment leaves the previous complete state behind.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
import time
from typing import TYPE_CHECKING, Any

from .._pb import qot_common_pb2, qot_get_ticker_pb2
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ("FORMAT", "decode_tape", "dump_state", "encode_tape", "load_state", "write_state")

#: The ``format`` value of a state file, and its version.
FORMAT = "aiofutu-sim-state"
VERSION = 1


def encode_tape(security: qot_common_pb2.Security, ticks: Iterable[qot_common_pb2.Ticker]) -> str:
    """Ticks as one base64 protobuf blob (a Qot_GetTicker S2C, the wire's own form)."""
    s2c = qot_get_ticker_pb2.S2C(security=security, name="", tickerList=ticks)
    return base64.b64encode(s2c.SerializeToString()).decode("ascii")


def decode_tape(blob: str) -> list[qot_common_pb2.Ticker]:
    """The ticks of :func:`encode_tape`."""
    s2c = qot_get_ticker_pb2.S2C.FromString(base64.b64decode(blob, validate=True))
    return list(s2c.tickerList)


def dump_state(seed: int, securities: Mapping[str, Mapping[str, Any]]) -> bytes:
    """The file's bytes for these per-security snapshots."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "seed": seed,
        "saved_at": time.time(),
        "securities": securities,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def load_state(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The per-security snapshots of a state file; ``{}`` when it does not exist yet.

    Raises :class:`~aiofutu.errors.ConfigurationError` for a file that is not a simulator state
    file (rather than starting over and overwriting it).
    """
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigurationError(f"cannot read the simulator state file {path}: {exc}") from None
    try:
        document = json.loads(raw)
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError(f"no {FORMAT!r} format marker")
        if document.get("version") != VERSION:
            raise ValueError(f"version {document.get('version')!r}, expected {VERSION}")
        securities = document["securities"]
        if not isinstance(securities, dict) or not all(
            isinstance(v, dict) for v in securities.values()
        ):
            raise ValueError("'securities' is not a mapping of code to state")
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"{path} is not a simulator state file ({exc}); remove it or give another path"
        ) from None
    return securities


def write_state(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically: temp file, fsync, rename."""
    target = os.path.abspath(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=os.path.dirname(target)
    )
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
