"""Record pushed ticks to Parquet, and read a recording back (``aiofutu record``, ``sim --replay``).

A recording is a polars DataFrame with one row per tick and one column per :class:`Ticker`
field, enums as their SDK strings; every field a push carries is kept, so the simulator can
serve the day again exactly as it was received::

    async with aiofutu.connect() as client:
        recorder = Recorder(["HK.00700"], limit=10_000)
        await recorder.run(client)
    await recorder.awrite("ticks.parquet")  # in a worker thread: the event loop keeps running

Writing and reading Parquet files is blocking I/O: in async code use :meth:`Recorder.awrite`
(or ``anyio.to_thread.run_sync``) rather than :meth:`Recorder.write` or the functions here.
"""

from __future__ import annotations

import logging
import math
import os
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.to_thread

from .enums import PushDataType, TickerDirection, TickerType
from .errors import ConfigurationError
from .frames import _polars
from .models import Ticker

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import polars as pl

    from .client import Client
    from .streams import Gap

__all__ = ("RECORD_COLUMNS", "Recorder", "read_recording", "ticks_to_frame", "write_recording")

logger = logging.getLogger("aiofutu.record")

#: The columns of a recording, in order: the :class:`Ticker` fields.
RECORD_COLUMNS: tuple[str, ...] = tuple(Ticker.model_fields)
_ENUM_COLUMNS = {
    "ticker_direction": TickerDirection,
    "type": TickerType,
    "push_data_type": PushDataType,
}


def record_schema() -> dict[str, Any]:
    """The polars schema of a recording (enums as plain strings, readable by any Parquet tool)."""
    pl = _polars()
    return {
        "code": pl.String,
        "name": pl.String,
        "sequence": pl.Int64,
        "time": pl.String,
        "price": pl.Float64,
        "volume": pl.Int64,
        "turnover": pl.Float64,
        "ticker_direction": pl.String,
        "type": pl.String,
        "push_data_type": pl.String,
        "timestamp": pl.Float64,
        "recv_time": pl.Float64,
        "type_sign": pl.Int64,
        "hp_volume": pl.Float64,
    }


def ticks_to_frame(ticks: Iterable[Ticker]) -> pl.DataFrame:
    """A recording frame of ``ticks``: every field, in :data:`RECORD_COLUMNS` order."""
    cols: dict[str, list[Any]] = {name: [] for name in RECORD_COLUMNS}
    for tick in ticks:
        values = tick.__dict__
        for name, column in cols.items():
            value = values[name]
            column.append(value.value if name in _ENUM_COLUMNS else value)
    return cast("pl.DataFrame", _polars().DataFrame(cols, schema=record_schema()))


def frame_to_ticks(frame: pl.DataFrame) -> list[Ticker]:
    """The :class:`Ticker` models of a recording frame (validated: a bad file fails loudly)."""
    missing = [c for c in RECORD_COLUMNS if c not in frame.columns]
    if missing:
        raise ConfigurationError(f"not an aiofutu recording: missing column(s) {missing}")
    ticks = []
    for row in frame.select(RECORD_COLUMNS).iter_rows(named=True):
        for name, enum in _ENUM_COLUMNS.items():
            row[name] = enum.coerce(row[name])
        ticks.append(Ticker(**row))
    return ticks


def write_recording(ticks: Iterable[Ticker], path: str | os.PathLike[str]) -> int:
    """Write ``ticks`` to a Parquet file; returns the number of rows."""
    frame = ticks_to_frame(ticks)
    frame.write_parquet(os.fspath(path))
    return frame.height


def read_recording(source: str | os.PathLike[str] | pl.DataFrame) -> list[Ticker]:
    """The ticks of a recording (a Parquet file written by :func:`write_recording`, or a frame)."""
    if not isinstance(source, (str, os.PathLike)):
        return frame_to_ticks(source)
    path = os.fspath(source)
    try:
        frame = _polars().read_parquet(path)
    except FileNotFoundError:
        raise ConfigurationError(f"recording {path!r} does not exist") from None
    except Exception as exc:  # polars raises several types for a file that is not Parquet
        raise ConfigurationError(f"cannot read recording {path!r}: {exc}") from None
    return frame_to_ticks(frame)


class Recorder:
    """Collects every pushed tick of ``codes`` until ``limit`` ticks or ``duration`` seconds.

    The stream uses ``overflow="block"``: a recording must not lose ticks, so a slow disk or
    CPU holds OpenD's pushes back instead. ``ticks`` holds what was received so far, so a
    recording cancelled midway (Ctrl-C) can still be written.
    """

    def __init__(
        self,
        codes: Sequence[str],
        *,
        limit: int | None = None,
        duration: float | None = None,
        first_push: bool = False,
    ) -> None:
        if limit is not None and (isinstance(limit, bool) or limit < 1):
            raise ConfigurationError(f"limit must be a positive int, got {limit!r}")
        if duration is not None and not duration > 0:
            raise ConfigurationError(f"duration must be > 0 seconds, got {duration!r}")
        self.codes = tuple(codes)
        self.limit = limit
        self.duration = duration
        self.first_push = first_push
        self.ticks: list[Ticker] = []
        self.gaps: list[Gap] = []
        #: True once subscribed (there is a recording to write, possibly empty).
        self.streaming = False

    async def run(self, client: Client) -> list[Ticker]:
        """Record from ``client``; returns :attr:`ticks`."""
        limit = self.limit if self.limit is not None else math.inf
        ticks = self.ticks
        with anyio.move_on_after(self.duration if self.duration is not None else math.inf):
            async with client.ticker_stream(
                *self.codes,
                buffer=100_000,
                overflow="block",
                on_gap=self.gaps.append,
                is_first_push=self.first_push,
            ) as stream:
                self.streaming = True
                async for tick in stream:
                    ticks.append(tick)
                    if len(ticks) >= limit:
                        break
        return ticks

    def frame(self) -> pl.DataFrame:
        """The recording so far as a DataFrame."""
        return ticks_to_frame(self.ticks)

    def write(self, path: str | os.PathLike[str]) -> int:
        """Write the recording so far to a Parquet file; returns the number of rows.

        Blocking: from async code, ``await`` :meth:`awrite` instead.
        """
        return self._write(list(self.ticks), path)

    async def awrite(self, path: str | os.PathLike[str]) -> int:
        """:meth:`write` in a worker thread, so the event loop keeps running meanwhile.

        It writes the ticks recorded when it starts, even if :meth:`run` goes on meanwhile.
        """
        return await anyio.to_thread.run_sync(self._write, list(self.ticks), path)

    @staticmethod
    def _write(ticks: list[Ticker], path: str | os.PathLike[str]) -> int:
        count = write_recording(ticks, path)
        logger.info("wrote %d ticks to %s", count, os.fspath(path))
        return count
