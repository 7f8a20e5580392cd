"""Micro-benchmarks of aiofutu's hot paths (pytest-benchmark; not part of ``make test``).

Run: ``python -m benchmarks --micro`` or
``python -m pytest benchmarks/test_micro.py -p no:cacheprovider`` (extra pytest-benchmark options,
e.g. ``--benchmark-json=PATH``, can follow either).

The inputs are built here, not by the simulator: realistic ``Qot_Common.Ticker`` messages for
HK.00700 with every field OpenD fills for a push, so the numbers do not move when the simulator
changes.
"""

from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING, Any

import pytest

from aiofutu import to_polars
from aiofutu._codec import FrameDecoder, encode_frame
from aiofutu._pb import qot_common_pb2, qot_update_ticker_pb2
from aiofutu.frames import ColumnBuffer
from aiofutu.models import tickers_from_pb

if TYPE_CHECKING:
    from pytest_benchmark.fixture import BenchmarkFixture

pytest.importorskip("polars")

_HEADER = struct.Struct("<2sIBBII20s8s")
_UPDATE_TICKER = 3011
_HK = 1
_CHUNK = 64 * 1024
_T0 = 1_764_000_000


def make_tickers(n: int) -> list[qot_common_pb2.Ticker]:
    """``n`` consecutive HK ticks, as OpenD pushes them."""
    out = []
    for i in range(n):
        ts = _T0 + i / 1000
        price = 400.0 + (i % 37) * 0.2
        volume = 100 * (1 + i % 13)
        out.append(
            qot_common_pb2.Ticker(
                time=f"2025-11-25 10:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}",
                sequence=(int(ts) << 32) | (i + 1),
                dir=1 + i % 3,
                price=price,
                volume=volume,
                turnover=price * volume,
                recvTime=ts + 0.002,
                type=1,
                typeSign=32,
                pushDataType=1,
                timestamp=ts,
            )
        )
    return out


def push_body(ticks_per_push: int) -> bytes:
    """A Qot_UpdateTicker Response body carrying ``ticks_per_push`` ticks."""
    response = qot_update_ticker_pb2.Response(retType=0)
    response.s2c.security.market = _HK
    response.s2c.security.code = "00700"
    response.s2c.name = "TENCENT"
    response.s2c.tickerList.extend(make_tickers(ticks_per_push))
    return response.SerializeToString()


def push_chunk(body: bytes) -> tuple[bytes, int]:
    """About 64 KiB of whole push frames (at least one), as one socket read would bring them."""
    frame = encode_frame(_UPDATE_TICKER, 1, body)
    count = max(_CHUNK // len(frame), 1)
    return frame * count, count


# body sizes of pushes with 1, 10 and 100 ticks (~150 B, ~1.5 KiB, ~15 KiB)
TICKS_PER_PUSH = [1, 10, 100]


@pytest.fixture(scope="module")
def tickers_1000() -> Any:
    response = qot_update_ticker_pb2.Response.FromString(push_body(1000))
    return response.s2c.tickerList


@pytest.mark.parametrize("ticks", TICKS_PER_PUSH, ids=lambda t: f"{t}tick")
def test_encode_frame(benchmark: BenchmarkFixture, ticks: int) -> None:
    body = push_body(ticks)
    benchmark.extra_info["body_bytes"] = len(body)
    frame = benchmark(encode_frame, _UPDATE_TICKER, 7, body)
    assert len(frame) == 44 + len(body)


@pytest.mark.parametrize("ticks", TICKS_PER_PUSH, ids=lambda t: f"{t}tick")
def test_frame_decoder_64k(benchmark: BenchmarkFixture, ticks: int) -> None:
    """Feed one ~64 KiB read of push frames and cut every frame (SHA1 checked)."""
    body = push_body(ticks)
    chunk, count = push_chunk(body)
    benchmark.extra_info.update(body_bytes=len(body), frames=count, chunk_bytes=len(chunk))

    def decode() -> int:
        decoder = FrameDecoder()
        decoder.feed(chunk)
        return sum(1 for _ in decoder)

    assert benchmark(decode) == count


@pytest.mark.parametrize("ticks", TICKS_PER_PUSH, ids=lambda t: f"{t}tick")
def test_floor_frame_parse_64k(benchmark: BenchmarkFixture, ticks: int) -> None:
    """Reference for the decoder: struct + SHA1 + ParseFromString, as the floor reader does."""
    body = push_body(ticks)
    chunk, count = push_chunk(body)
    unpack = _HEADER.unpack_from
    sha1 = hashlib.sha1
    new = qot_update_ticker_pb2.Response

    def parse() -> int:
        pos = 0
        total = 0
        end_of_chunk = len(chunk)
        while end_of_chunk - pos >= 44:
            fields = unpack(chunk, pos)
            end = pos + 44 + fields[5]
            payload = chunk[pos + 44 : end]
            pos = end
            if sha1(payload).digest() == fields[6]:
                msg = new()
                msg.ParseFromString(payload)
                total += len(msg.s2c.tickerList)
        return total

    assert benchmark(parse) == count * ticks


@pytest.mark.parametrize("ticks", [1, 1000])
def test_tickers_from_pb(benchmark: BenchmarkFixture, tickers_1000: Any, ticks: int) -> None:
    source = tickers_1000[:ticks] if ticks < 1000 else tickers_1000
    models = benchmark(tickers_from_pb, _HK, "00700", "TENCENT", source)
    assert len(models) == ticks
    assert models[-1].code == "HK.00700"


def test_column_buffer_add_1000(benchmark: BenchmarkFixture, tickers_1000: Any) -> None:
    def add() -> ColumnBuffer:
        cols = ColumnBuffer(push_data_type=True)
        cols.add_pb(_HK, "00700", "TENCENT", tickers_1000)
        return cols

    assert benchmark(add).rows == 1000


def test_column_buffer_to_frame_1000(benchmark: BenchmarkFixture, tickers_1000: Any) -> None:
    def build() -> Any:
        cols = ColumnBuffer(push_data_type=True)
        cols.add_pb(_HK, "00700", "TENCENT", tickers_1000)
        return cols.to_frame()

    frame = benchmark(build)
    assert frame.height == 1000


def test_column_buffer_10x100_to_frame(benchmark: BenchmarkFixture, tickers_1000: Any) -> None:
    """1000 ticks arriving as 100 pushes of 10, as ``ticker_frames`` builds one frame."""
    pushes = [tickers_1000[i : i + 10] for i in range(0, 1000, 10)]

    def build() -> Any:
        cols = ColumnBuffer(push_data_type=True)
        for push in pushes:
            cols.add_pb(_HK, "00700", "TENCENT", push)
        return cols.to_frame()

    assert benchmark(build).height == 1000


@pytest.mark.parametrize("ticks", [10, 1000])
def test_to_polars(benchmark: BenchmarkFixture, tickers_1000: Any, ticks: int) -> None:
    models = tickers_from_pb(_HK, "00700", "TENCENT", tickers_1000[:ticks])
    frame = benchmark(to_polars, models)
    assert frame.height == ticks


@pytest.mark.parametrize("ticks", [1, 10])
def test_parse_push_body(benchmark: BenchmarkFixture, ticks: int) -> None:
    """Reference: the protobuf parse alone (upb), per push."""
    body = push_body(ticks)
    new = qot_update_ticker_pb2.Response

    def parse() -> int:
        msg = new()
        msg.ParseFromString(body)
        return len(msg.s2c.tickerList)

    assert benchmark(parse) == ticks
