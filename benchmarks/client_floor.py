"""The floor: the least work any client must do, as bare readers that no client can beat.

``python -m benchmarks.client_floor push --port PORT --n N``: an ``asyncio.Protocol`` that cuts
frames with ``struct``, checks each body's SHA1, parses each ``Qot_UpdateTicker`` push into a new
``aiofutu._pb.qot_update_ticker_pb2.Response`` and counts the tickers. No models, no routing, no
dedup, no backpressure: it bounds what a client can deliver. The handshake (InitConnect, Qot_Sub
with push) is done once, untimed, with the same framing.

``python -m benchmarks.client_floor rt --port PORT --nums 1000,10``: ``Qot_GetTicker`` over a
blocking socket (write the frame, read the reply, check SHA1, ``ParseFromString``): the round trip
through the simulator that every client pays, for reference next to ``get_rt_ticker``; then the
same through a bare ``asyncio.Protocol`` (a future per request, resolved in ``data_received``):
the round trip that every *asyncio* client pays on top, two event-loop passes per reply.

With ``--rsa-key FILE`` (push only) the connection is encrypted: the handshake is RSA, and every
push body is AES-decrypted (``aiofutu._crypto.AesCipher``, the ``cryptography`` package) before
its SHA1 is checked: decryption is work no client can skip either.

(A reused Response is *not* used: upb keeps every parse in the message's arena until the message
is freed, so a reused message grows by each body it ever parsed.)
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import socket
import struct
import time
from typing import TYPE_CHECKING, Any

from aiofutu._pb import init_connect_pb2, qot_get_ticker_pb2, qot_sub_pb2, qot_update_ticker_pb2

from ._common import Usage, emit, fail, now

if TYPE_CHECKING:
    from collections.abc import Callable

_HEADER = struct.Struct("<2sIBBII20s8s")
_HEADER_SIZE = _HEADER.size
_UPDATE_TICKER = 3011
_Response = qot_update_ticker_pb2.Response
_MARKETS = {"HK": 1, "US": 11, "SH": 21, "SZ": 22}


def _frame(
    proto_id: int, serial: int, body: bytes, encrypt: Callable[[bytes], bytes] | None = None
) -> bytes:
    digest = hashlib.sha1(body).digest()
    if encrypt is not None:
        body = encrypt(body)
    return _HEADER.pack(b"FT", proto_id, 0, 0, serial, len(body), digest, bytes(8)) + body


class _Reader(asyncio.Protocol):
    def __init__(self, n: int, rsa: Any = None) -> None:
        self.n = n
        self.rsa = rsa  # aiofutu._crypto.RsaKey when encrypted
        self.aes: Any = None  # aiofutu._crypto.AesCipher once InitConnect answered
        self.count = 0
        self.messages = 0
        self.bad = 0
        self.t_first = 0.0
        self.t_last = 0.0
        self.done = asyncio.get_running_loop().create_future()
        self.replies: dict[int, asyncio.Future[bytes]] = {}
        self._rest = b""

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        buf = self._rest + data if self._rest else data
        end_of_buf = len(buf)
        pos = 0
        unpack = _HEADER.unpack_from
        sha1 = hashlib.sha1
        new = _Response
        count = self.count
        aes = self.aes
        while end_of_buf - pos >= _HEADER_SIZE:
            _magic, proto_id, _fmt, _ver, serial, size, digest, _ = unpack(buf, pos)
            end = pos + _HEADER_SIZE + size
            if end > end_of_buf:
                break
            body = buf[pos + _HEADER_SIZE : end]
            pos = end
            if aes is not None:
                body = aes.decrypt(body)
            elif self.rsa is not None and proto_id == 1001:
                body = self.rsa.decrypt(body)
            if sha1(body).digest() != digest:
                self.bad += 1
                continue
            if proto_id == _UPDATE_TICKER:
                msg = new()
                msg.ParseFromString(body)
                if not count:
                    self.t_first = now()
                count += len(msg.s2c.tickerList)
                self.messages += 1
                if count >= self.n and not self.done.done():
                    self.t_last = now()
                    self.done.set_result(None)
            else:
                waiter = self.replies.pop(serial, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(body)
        self.count = count
        self._rest = buf[pos:]


async def _request(
    transport: Any, reader: _Reader, proto_id: int, serial: int, message: Any
) -> Any:
    waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    reader.replies[serial] = waiter
    encrypt = None
    if reader.rsa is not None:
        encrypt = reader.rsa.encrypt if proto_id == 1001 else reader.aes.encrypt
    transport.write(_frame(proto_id, serial, message.SerializeToString(), encrypt))
    body = await asyncio.wait_for(waiter, 10)
    reply: Any = {1001: init_connect_pb2.Response, 3001: qot_sub_pb2.Response}[proto_id]()
    reply.ParseFromString(body)
    if reply.retType != 0:
        fail(f"protocol {proto_id} failed: {reply.retMsg}")
    return reply


def _init_request(encrypted: bool = False) -> Any:
    init = init_connect_pb2.Request()
    init.c2s.clientVer = 300
    init.c2s.clientID = "bench-floor"
    init.c2s.recvNotify = False
    init.c2s.pushProtoFmt = 0
    init.c2s.packetEncAlgo = 2 if encrypted else -1  # AES-CBC, as the SDK asks
    return init


def _sub_request(full_code: str, push: bool) -> Any:
    market, code = full_code.split(".", 1)
    sub = qot_sub_pb2.Request()
    sec = sub.c2s.securityList.add()
    sec.market = _MARKETS[market]
    sec.code = code
    sub.c2s.subTypeList.append(4)  # TICKER
    sub.c2s.isSubOrUnSub = True
    sub.c2s.isRegOrUnRegPush = push
    sub.c2s.isFirstPush = False
    return sub


async def _push(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    rsa = None
    if args.rsa_key:
        from aiofutu._crypto import RsaKey

        rsa = RsaKey.load(args.rsa_key)
    transport, reader = await loop.create_connection(
        lambda: _Reader(args.n, rsa), "127.0.0.1", args.port
    )
    init = await _request(transport, reader, 1001, 1, _init_request(rsa is not None))
    if rsa is not None:
        from aiofutu._crypto import AesCipher

        s2c = init.s2c
        reader.aes = AesCipher(s2c.connAESKey, s2c.aesCBCiv if s2c.HasField("aesCBCiv") else None)
    await _request(transport, reader, 3001, 2, _sub_request(args.code, True))
    usage = Usage()
    usage.start()
    emit("ready")
    await asyncio.wait_for(reader.done, args.timeout)
    result = usage.stop()
    transport.close()
    emit(
        "result",
        ticks=reader.count,
        deliveries=reader.messages,
        bad=reader.bad,
        t_first=reader.t_first,
        t_last=reader.t_last,
        **result,
    )


class _Blocking:
    """One request at a time over a blocking socket."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.serial = 0
        self.header = bytearray(_HEADER_SIZE)

    def _read_into(self, view: memoryview) -> None:
        while view:
            got = self.sock.recv_into(view)
            if not got:
                raise ConnectionError("the simulator closed the connection")
            view = view[got:]

    def call(self, proto_id: int, message: Any, reply: Any) -> Any:
        self.serial += 1
        self.sock.sendall(_frame(proto_id, self.serial, message.SerializeToString()))
        while True:
            self._read_into(memoryview(self.header))
            _magic, got_id, _fmt, _ver, serial, size, digest, _ = _HEADER.unpack(self.header)
            body = bytearray(size)
            self._read_into(memoryview(body))
            if got_id == proto_id and serial == self.serial:
                break  # anything else (a push) is skipped
        data = bytes(body)
        if hashlib.sha1(data).digest() != digest:
            raise ValueError("bad SHA1")
        response = reply()
        response.ParseFromString(data)
        if response.retType != 0:
            raise ValueError(f"protocol {proto_id}: {response.retMsg}")
        return response


def _ticker_request(full_code: str, num: int) -> Any:
    market, code = full_code.split(".", 1)
    req = qot_get_ticker_pb2.Request()
    req.c2s.security.market = _MARKETS[market]
    req.c2s.security.code = code
    req.c2s.maxRetNum = num
    return req


async def _rt_async(args: argparse.Namespace) -> dict[str, list[float]]:
    """The same round trips through an asyncio protocol: the floor of any asyncio client."""
    loop = asyncio.get_running_loop()
    transport, reader = await loop.create_connection(lambda: _Reader(0), "127.0.0.1", args.port)
    await _request(transport, reader, 1001, 1, _init_request())
    await _request(transport, reader, 3001, 2, _sub_request(args.code, False))
    out: dict[str, list[float]] = {}
    serial = 2
    for num in args.nums:
        body = _ticker_request(args.code, num).SerializeToString()
        times = []
        for i in range(args.warmup + args.calls):
            serial += 1
            t0 = time.perf_counter()
            waiter: asyncio.Future[bytes] = loop.create_future()
            reader.replies[serial] = waiter
            transport.write(_frame(3010, serial, body))
            reply = qot_get_ticker_pb2.Response.FromString(await waiter)
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
            if len(reply.s2c.tickerList) != num:
                fail(f"Qot_GetTicker({num}) returned {len(reply.s2c.tickerList)} ticks")
        out[f"async:{num}"] = times
    transport.close()
    return out


def _rt(args: argparse.Namespace) -> None:
    conn = _Blocking(args.port)
    conn.call(1001, _init_request(), init_connect_pb2.Response)
    conn.call(3001, _sub_request(args.code, False), qot_sub_pb2.Response)
    out: dict[str, list[float]] = {}
    for num in args.nums:
        req = _ticker_request(args.code, num)
        reply = qot_get_ticker_pb2.Response
        if len(conn.call(3010, req, reply).s2c.tickerList) != num:
            fail(f"Qot_GetTicker({num}) returned too few ticks")
        for _ in range(args.warmup):
            conn.call(3010, req, reply)
        times = []
        for _ in range(args.calls):
            t0 = time.perf_counter()
            conn.call(3010, req, reply)
            times.append(time.perf_counter() - t0)
        out[f"raw:{num}"] = times
    conn.sock.close()
    out.update(asyncio.run(_rt_async(args)))
    emit("result", latencies=out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("push", "rt"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--code", default="HK.00700")
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--nums", type=lambda s: [int(x) for x in s.split(",")], default=[1000])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--rsa-key", default="", help="push: encrypt with OpenD's RSA key")
    args = parser.parse_args()
    try:
        if args.mode == "rt":
            _rt(args)
        else:
            asyncio.run(_push(args))
    except Exception as exc:
        fail(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
