"""A bounded fuzz run of the receive path, in the suite; `fuzz_receive.py` runs it for longer.

Random streams mix well-formed frames (pushes, replies, unknown ids) with corrupted ones and
garbage; the receive path must only ever raise aiofutu's typed errors, and a live client over a
real socket must survive the same bytes or fail with a typed error, never hang.
"""

from __future__ import annotations

import anyio
import pytest
from client.scripted import scripted  # tests/ is on sys.path (rootdir packages)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aiofutu
from aiofutu._codec import encode_frame
from aiofutu._pb import keep_alive_pb2, qot_update_ticker_pb2

from .receive_path import receive_path


def _push(code: str, seq: int) -> bytes:
    resp = qot_update_ticker_pb2.Response(retType=0)
    market, _, local = code.partition(".")
    resp.s2c.security.market = 1 if market == "HK" else 11
    resp.s2c.security.code = local
    resp.s2c.tickerList.add(
        time="2026-01-02 10:00:00", sequence=seq, dir=1, price=1.0, volume=1, turnover=1.0
    )
    return resp.SerializeToString()


_frame = st.one_of(
    st.builds(
        lambda code, seq, serial: encode_frame(3011, serial, _push(code, seq)),
        st.sampled_from(["HK.00700", "US.AAPL", "HK.00001"]),
        st.integers(0, 2**62),
        st.integers(0, 2**32 - 1),
    ),
    st.builds(
        lambda pid, serial, body: encode_frame(pid, serial, body),
        st.sampled_from([1001, 1002, 1003, 1004, 3001, 3003, 3010, 3011, 9999]),
        st.integers(0, 2**32 - 1),
        st.binary(max_size=64),
    ),
)


@st.composite
def _corrupted(draw: st.DrawFn) -> tuple[bytes, int, bool]:
    """(bytes, number of frames in them, whether they were damaged afterwards)."""
    parts = draw(st.lists(_frame, max_size=12))
    data = bytearray(b"".join(parts))
    damaged = False
    for _ in range(draw(st.integers(0, 3))):  # flip, cut or insert bytes
        if not data:
            break
        damaged = True
        pos = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            data[pos] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[pos:]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data), len(parts), damaged


def _streams() -> st.SearchStrategy[bytes]:
    return _corrupted().map(lambda t: t[0])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_corrupted(), st.integers(1, 300))
def test_receive_path_only_raises_typed_errors(case: tuple[bytes, int, bool], chunk: int) -> None:
    data, n_frames, damaged = case
    result = receive_path(data, chunk)  # anything but a typed error propagates and fails
    if not damaged:
        assert result["frames"] == n_frames
        assert result["bad"] == 0
    else:
        assert result["frames"] + result["bad"] <= n_frames + len(data) // 44 + 1


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_streams())
def test_live_client_survives_random_bytes(backend: str, data: bytes) -> None:
    async def scenario() -> None:
        def handler(proto_id: int, serial: int, body: bytes) -> bytes:
            resp = keep_alive_pb2.Response(retType=0)
            resp.s2c.time = 1
            return data + encode_frame(proto_id, serial, resp.SerializeToString())

        async with scripted(handler) as srv:
            with anyio.fail_after(10):
                async with aiofutu.connect("127.0.0.1", srv.port, timeout=1) as client:
                    req = keep_alive_pb2.Request()
                    req.c2s.time = 1
                    for _ in range(2):
                        try:
                            await client.request(1004, req)
                        except aiofutu.FutuError:
                            pass  # a typed error is the only acceptable failure

    anyio.run(scenario, backend=backend)
