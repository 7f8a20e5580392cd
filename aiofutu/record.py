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

import contextlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.to_thread

from .enums import PushDataType, TickerDirection, TickerType
from .errors import ConfigurationError
from .frames import TICKER_COLUMNS, _polars
from .models import Ticker

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import polars as pl

    from .client import Client
    from .streams import Gap, TickerStream

__all__ = ("RECORD_COLUMNS", "Recorder", "read_recording", "ticks_to_frame", "write_recording")

logger = logging.getLogger("aiofutu.record")

#: The columns of a recording, in order: the :class:`Ticker` fields.
RECORD_COLUMNS: tuple[str, ...] = tuple(Ticker.model_fields)
#: CSV columns: the official SDK's ``get_rt_ticker`` columns in its order, then the other fields.
CSV_COLUMNS: tuple[str, ...] = (
    *TICKER_COLUMNS,
    *(c for c in RECORD_COLUMNS if c not in TICKER_COLUMNS),
)
#: The formats of a recording, by file suffix (JSON: one object per line, as ``--format json``).
FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}
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


def format_of(path: str | os.PathLike[str]) -> str:
    """The format of a recording file from its suffix; :class:`ConfigurationError` if unknown."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    fmt = FORMATS.get(suffix)
    if fmt is None:
        raise ConfigurationError(
            f"cannot tell the format of {os.fspath(path)!r} from its suffix: "
            f"use .parquet, .csv or .jsonl"
        )
    return fmt


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise :class:`OSError` naming ``path`` unless a file can be created there now.

    Creates and removes a temporary file in its directory: permissions, a read-only or
    pseudo file system (``/proc``), a missing directory all show up before any work is done.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(21, f"cannot write {path!r}: it is a directory")
    try:
        fd, probe = tempfile.mkstemp(
            prefix=".aiofutu-", suffix=".probe", dir=os.path.dirname(os.path.abspath(path))
        )
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write {path!r}: {exc.strerror}") from None
    os.close(fd)
    os.unlink(probe)
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise PermissionError(13, f"cannot write {path!r}: permission denied")


def ticks_to_csv(ticks: Iterable[Ticker], *, header: bool = True) -> str:
    """CSV of ``ticks``, every field, in :data:`CSV_COLUMNS` order."""
    return ticks_to_frame(ticks).select(CSV_COLUMNS).write_csv(include_header=header)


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
    """The ticks of a recording: a frame, or a file written by :func:`write_recording` or
    ``aiofutu record`` (``.parquet``, ``.csv``, ``.jsonl``), or the ``FILE.parts`` directory an
    interrupted Parquet recording leaves behind."""
    if not isinstance(source, (str, os.PathLike)):
        return frame_to_ticks(source)
    path = os.fspath(source)
    pl = _polars()
    try:
        if os.path.isdir(path):
            return frame_to_ticks(_read_parts(path))
        fmt = format_of(path)
        if fmt == "jsonl":
            with open(path, encoding="utf-8") as fh:
                return [Ticker.model_validate_json(line) for line in fh if line.strip()]
        if fmt == "csv":
            frame = pl.read_csv(path, schema_overrides=record_schema())
        else:
            frame = pl.read_parquet(path)
    except FileNotFoundError:
        raise ConfigurationError(f"recording {path!r} does not exist") from None
    except ConfigurationError:
        raise
    except Exception as exc:  # polars raises several types for a file that is not Parquet
        raise ConfigurationError(f"cannot read recording {path!r}: {exc}") from None
    return frame_to_ticks(frame)


def _read_parts(directory: str) -> pl.DataFrame:
    """The part files of :class:`_Sink` in order, skipping any a later merge covers."""
    parts = [os.path.join(directory, name) for name in _current_parts(directory)]
    if not parts:
        return cast("pl.DataFrame", _polars().DataFrame(schema=record_schema()))
    return cast("pl.DataFrame", _polars().read_parquet(parts))


def _part_names(directory: str) -> list[tuple[int, int, str]]:
    names = []
    for name in os.listdir(directory):
        stem, _, ext = name.partition(".")
        _, first, last = [*stem.split("-"), "", "", ""][:3]
        if ext == "parquet" and first.isdigit() and last.isdigit():
            names.append((int(first), int(last), name))
    return names


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
        #: Rows in the ``out`` file of :meth:`run`, once it is complete.
        self.written: int | None = None

    async def run(
        self,
        client: Client,
        *,
        out: str | os.PathLike[str] | None = None,
        flush_interval: float = 1.0,
    ) -> list[Ticker]:
        """Record from ``client``; returns :attr:`ticks`.

        With ``out`` (``.parquet``, ``.csv`` or ``.jsonl``) the recording is also written as it
        grows, at most ``flush_interval`` seconds behind, so a crash, a kill or a full disk late
        in a long session keeps what was recorded; the file is complete when ``run`` returns
        or is cancelled (:attr:`written` rows). ``out`` is checked before subscribing.
        """
        sink = None
        if out is not None:
            sink = _Sink(out)
            await anyio.to_thread.run_sync(sink.check)
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
                if sink is None:
                    async for tick in stream:
                        ticks.append(tick)
                        if len(ticks) >= limit:
                            break
                    return ticks
                await anyio.to_thread.run_sync(sink.open)
                try:
                    await self._record_to(stream, sink, limit, flush_interval)
                finally:
                    with anyio.CancelScope(shield=True):  # Ctrl-C: finish the file first
                        self.written = await anyio.to_thread.run_sync(sink.close, list(ticks))
        return ticks

    async def _record_to(
        self, stream: TickerStream, sink: _Sink, limit: float, flush_interval: float
    ) -> None:
        """Collect ticks, appending them to ``sink`` every ``flush_interval`` seconds."""
        ticks = self.ticks
        due = math.inf
        while len(ticks) < limit:
            with anyio.move_on_after(max(due - time.monotonic(), 0)):  # idle: flush when due
                try:
                    tick = await anext(stream)
                except StopAsyncIteration:
                    return
                ticks.append(tick)
                if due == math.inf:  # the first tick not written yet
                    due = time.monotonic() + flush_interval
            if time.monotonic() >= due:
                await anyio.to_thread.run_sync(sink.append, ticks[sink.rows :])
                due = math.inf

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


class _Sink:
    """A recording written as it grows, so that a crash, a kill or a full disk keeps it.

    CSV and JSON lines are appended to the file itself. Parquet cannot be appended to: the
    ticks go to part files in ``FILE.parts/`` (merged as they pile up, so that a long session
    leaves few), and :meth:`close` writes ``FILE`` and removes them. After a crash,
    ``read_recording("FILE.parts")`` reads them. All methods block (call them in a thread).
    """

    FANOUT = 16  # parts of one size merged into one

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.format = format_of(self.path)
        self.parts = f"{self.path}.parts"
        self.rows = 0  # appended so far
        self._fh: Any = None
        self._levels: list[list[tuple[int, int]]] = [[]]  # part row ranges, by merge level

    def check(self) -> None:
        """Fail now, not after a session, if the file cannot be written."""
        check_writable(self.path)
        if self.format == "parquet" and os.path.exists(self.parts):
            raise ConfigurationError(
                f"{self.parts!r} holds the parts of an unfinished recording (read them with "
                f"aiofutu.record.read_recording); move it away first"
            )

    def open(self) -> None:
        """Create the file (CSV, JSON lines) or the parts directory (Parquet)."""
        if self.format == "parquet":
            self._guard(os.mkdir, self.parts)
            return
        self._fh = self._guard(open, self.path, "w", encoding="utf-8", newline="")
        if self.format == "csv":
            self._write(ticks_to_csv([]))

    def append(self, ticks: list[Ticker]) -> None:
        """Write ``ticks`` (the rows after :attr:`rows`) durably enough to survive a kill."""
        if not ticks:
            return
        if self.format == "parquet":
            first, last = self.rows, self.rows + len(ticks) - 1
            self._write_part(ticks_to_frame(ticks), first, last)
            self._levels[0].append((first, last))
            self._merge()
        elif self.format == "csv":
            self._write(ticks_to_csv(ticks, header=False))
        else:
            self._write("".join(t.model_dump_json() + "\n" for t in ticks))
        self.rows += len(ticks)

    def close(self, ticks: list[Ticker]) -> int:
        """Write what :meth:`append` has not, and complete the file; returns its row count."""
        self.append(ticks[self.rows :])
        if self._fh is not None:
            self._fh.close()
            return self.rows
        temp = f"{self.path}.tmp"
        try:
            write_recording(ticks, temp)
            os.replace(temp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise OSError(
                exc.errno,
                f"cannot write {self.path!r}: {exc.strerror}; the {self.rows} ticks "
                f"recorded are in {self.parts!r} (aiofutu.record.read_recording reads them)",
            ) from None
        shutil.rmtree(self.parts, ignore_errors=True)
        return len(ticks)

    def _write(self, text: str) -> None:
        self._guard(self._fh.write, text)
        self._guard(self._fh.flush)

    def _write_part(self, frame: pl.DataFrame, first: int, last: int) -> None:
        name = os.path.join(self.parts, f"part-{first:012d}-{last:012d}.parquet")
        self._guard(frame.write_parquet, f"{name}.tmp")
        os.replace(f"{name}.tmp", name)  # a part is complete or absent

    def _merge(self) -> None:
        """Merge the parts of a level once it has :attr:`FANOUT` (an LSM's size tiers)."""
        level = 0
        while len(self._levels[level]) >= self.FANOUT:
            ranges = self._levels[level]
            names = [os.path.join(self.parts, f"part-{a:012d}-{b:012d}.parquet") for a, b in ranges]
            first, last = ranges[0][0], ranges[-1][1]
            self._write_part(self._read(names), first, last)
            for name in names:  # a kill here leaves parts that the merged one covers
                os.unlink(name)
            self._levels[level] = []
            if len(self._levels) == level + 1:
                self._levels.append([])
            self._levels[level + 1].append((first, last))
            level += 1

    def _read(self, names: list[str]) -> pl.DataFrame:
        """The rows of these part files, in order."""
        return cast("pl.DataFrame", _polars().read_parquet(names))

    def _guard(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a file operation; its error names the recording's path, not a raw errno."""
        try:
            return func(*args, **kwargs)
        except OSError as exc:
            where = f"; the {self.rows} ticks written so far are kept" if self.rows else ""
            raise OSError(exc.errno, f"cannot write {self.path!r}: {exc.strerror}{where}") from None


class RowSink(_Sink):
    """Rows (the dicts ``aiofutu record --kind quote|order_book|broker|kline|rt`` writes) written
    as they come, like the tick recording: CSV and JSON lines appended to the file, Parquet in
    part files merged at :meth:`close` (a crash leaves ``FILE.parts/``). Columns are the first
    row's keys; a column that is empty in one part and typed in another is widened on merge."""

    def open(self) -> None:
        """Create the file (its CSV header comes with the first rows) or the parts directory."""
        if self.format == "parquet":
            self._guard(os.mkdir, self.parts)
            return
        self._fh = self._guard(open, self.path, "w", encoding="utf-8", newline="")

    def append(self, rows: list[dict[str, Any]]) -> None:  # type: ignore[override]
        """Write ``rows`` durably enough to survive a kill."""
        if not rows:
            return
        if self.format == "jsonl":
            self._write("".join(json.dumps(row) + "\n" for row in rows))
        else:
            frame = _polars().DataFrame(rows, infer_schema_length=None)
            if self.format == "csv":
                self._write(frame.write_csv(include_header=self.rows == 0))
            else:
                first, last = self.rows, self.rows + len(rows) - 1
                self._write_part(frame, first, last)
                self._levels[0].append((first, last))
                self._merge()
        self.rows += len(rows)

    def close(self, rows: list[dict[str, Any]]) -> int:  # type: ignore[override]
        """Write ``rows`` (those not appended yet) and complete the file; its row count."""
        self.append(rows)
        if self._fh is not None:
            self._fh.close()
            return self.rows
        names = [os.path.join(self.parts, name) for name in _current_parts(self.parts)]
        frame = self._read(names) if names else _polars().DataFrame()
        temp = f"{self.path}.tmp"
        try:
            frame.write_parquet(temp)
            os.replace(temp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise OSError(
                exc.errno,
                f"cannot write {self.path!r}: {exc.strerror}; the {self.rows} rows recorded "
                f"are in {self.parts!r} (polars.read_parquet reads them)",
            ) from None
        shutil.rmtree(self.parts, ignore_errors=True)
        return self.rows

    def _read(self, names: list[str]) -> pl.DataFrame:
        pl_ = _polars()
        frames = [pl_.read_parquet(name) for name in names]
        return cast("pl.DataFrame", pl_.concat(frames, how="diagonal_relaxed"))


def _current_parts(directory: str) -> list[str]:
    """The part files of a sink in order, without those a later merge covers."""
    names, covered = [], -1
    for _first, last, name in sorted(_part_names(directory), key=lambda p: (p[0], -p[1])):
        if last > covered:
            names.append(name)
            covered = last
    return names
