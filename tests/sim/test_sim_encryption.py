"""The simulator with an RSA key: encrypted sessions over real sockets, and every mismatch.

aiofutu's client (``connect(..., rsa_private_key=...)``) against ``sim.serve(rsa_key=...)`` in
each AES mode; a raw client for what aiofutu's client never sends (other ``packetEncAlgo``
values, JSON pushes, requests before InitConnect). Each mismatch must be one line, typed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

import aiofutu
from aiofutu import sim
from aiofutu._codec import Frame, FrameDecoder, encode_frame
from aiofutu._crypto import AesCipher, RsaKey, generate_private_key_pem
from aiofutu._pb import (
    init_connect_pb2,
    keep_alive_pb2,
    qot_common_pb2,
    qot_sub_pb2,
)

pytest.importorskip("cryptography", reason="the crypto extra (a dev dependency)")
pytestmark = pytest.mark.anyio

HK = "HK.00700"
QUIET: dict[str, Any] = {"tick_rate": 0, "seed": 5}


@pytest.fixture(scope="module")
def pem() -> bytes:
    return generate_private_key_pem(1024)


@pytest.fixture(scope="module")
def other_pem() -> bytes:
    return generate_private_key_pem(1024)


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text, text
    return text


async def _keepalive(client: aiofutu.Client) -> int:
    request = keep_alive_pb2.Request()
    request.c2s.time = 1
    return int((await client.request(1004, request, timeout=5)).s2c.time)


# ---- aiofutu's client ----------------------------------------------------------------------


MODES = [("auto", "cbc"), ("cbc", "cbc"), ("ecb", "ecb")]  # aiofutu asks for AES-CBC


@pytest.mark.parametrize(("aes_mode", "expected"), MODES)
async def test_client_session_in_each_aes_mode(pem: bytes, aes_mode: str, expected: str) -> None:
    async with sim.serve(**QUIET, rsa_key=pem, aes_mode=aes_mode) as server:
        assert server.encrypted
        async with (
            aiofutu.connect(server.host, server.port, rsa_private_key=pem) as client,
            client.ticker_stream(HK, buffer=2_000) as stream,
        ):
            with anyio.fail_after(10):
                before = server.market.history(HK)
                first = await anext(stream)  # the first push: the latest tick, encrypted
                assert first.sequence == before[-1].sequence
                ticks = await client.get_rt_ticker(HK, 1000)
                assert [(t.sequence, t.time, t.price, t.volume) for t in ticks] == [
                    (t.sequence, t.time, t.price, t.volume) for t in before
                ]
                await server.burst(HK, 500)  # one tick per push
                await server.burst(HK, 300, ticks_per_push=10)
                pushed = [await anext(stream) for _ in range(800)]
                assert await _keepalive(client) > 0
            sent = server.market.history(HK)[-800:]
            assert [t.sequence for t in pushed] == [t.sequence for t in sent]
            assert [t.price for t in pushed] == [t.price for t in sent]
            assert not stream.gaps
            session = server.sessions()[0]
            assert session.aes is not None and session.aes.mode == expected
            assert (session.aes_iv is not None) == (expected == "cbc")
    assert server.handshakes == {f"aes-{expected}": 1}


async def test_periodic_keepalive_is_encrypted(pem: bytes) -> None:
    async with (
        sim.serve(**QUIET, rsa_key=pem, keepalive_interval=1) as server,
        aiofutu.connect(server.host, server.port, rsa_private_key=pem) as client,
    ):
        with anyio.fail_after(5):
            while not server.requests[1004]:  # noqa: ASYNC110  # polling a counter
                await anyio.sleep(0.05)
        assert await _keepalive(client) > 0  # the link is still up
    assert server.handshakes == {"aes-cbc": 1}  # and was never re-established


async def test_2048_bit_key(tmp_path: Path) -> None:
    key = tmp_path / "big.pem"
    key.write_bytes(generate_private_key_pem(2048))
    async with (
        sim.serve(**QUIET, rsa_key=key, aes_mode="ecb") as server,
        aiofutu.connect(server.host, server.port, rsa_private_key=str(key)) as client,
    ):
        await client.subscribe([HK], ["TICKER"], subscribe_push=False)
        assert len(await client.get_rt_ticker(HK, 10)) == 10
    assert server.handshakes == {"aes-ecb": 1}


async def test_two_sessions_two_keys_one_burst(pem: bytes) -> None:
    """Every connection has its own AES key (and mode): a burst is encrypted per connection."""
    async with sim.serve(**QUIET, rsa_key=pem) as server:
        raw = await RawClient.open(server, pem)
        async with raw.stream:
            reply = await raw.init(algo=0)  # FTAES_ECB, next to aiofutu's AES-CBC
            assert not reply.s2c.HasField("aesCBCiv")
            await raw.subscribe(HK)
            async with (
                aiofutu.connect(server.host, server.port, rsa_private_key=pem) as client,
                client.ticker_stream(HK, is_first_push=False) as stream,
            ):
                await server.burst(HK, 300, ticks_per_push=3)
                with anyio.fail_after(10):
                    got = [await anext(stream) for _ in range(300)]
                    pushes = [await raw.frame() for _ in range(100)]
                keys = {s.aes_key for s in server.sessions()}
    sent = [t.sequence for t in server.market.history(HK)[-300:]]
    assert [t.sequence for t in got] == sent
    raw_ticks = [t["sequence"] for p in pushes for t in _push_json_or_pb(p)]
    assert raw_ticks == sent
    assert len(keys) == 2
    assert server.handshakes == {"aes-ecb": 1, "aes-cbc": 1}


# ---- mismatches: one line, typed -----------------------------------------------------------


async def test_wrong_key(pem: bytes, other_pem: bytes) -> None:
    async with sim.serve(**QUIET, rsa_key=pem) as server:
        with pytest.raises(aiofutu.ConnectError) as caught:
            async with aiofutu.connect(
                server.host, server.port, rsa_private_key=other_pem, connect_timeout=5
            ):
                pass
    text = _one_line(caught.value)
    assert "cannot decrypt InitConnect with this OpenD's RSA private key" in text
    assert "same RSA key" in text
    assert server.handshakes == {"refused": 1}


async def test_client_encrypts_but_simulator_does_not(pem: bytes) -> None:
    async with sim.serve(**QUIET) as server:
        with pytest.raises(aiofutu.ConnectError) as caught:
            async with aiofutu.connect(
                server.host, server.port, rsa_private_key=pem, connect_timeout=5
            ):
                pass
    text = _one_line(caught.value)
    assert "OpenD answered InitConnect without encryption" in text
    assert "this OpenD has no RSA private key" in text
    assert server.handshakes == {}


async def test_simulator_encrypts_but_client_does_not(pem: bytes) -> None:
    async with sim.serve(**QUIET, rsa_key=pem) as server:
        with pytest.raises(aiofutu.ConnectError) as caught:
            async with aiofutu.connect(server.host, server.port, connect_timeout=5):
                pass
    text = _one_line(caught.value)
    assert "InitConnect is not encrypted, but this OpenD has an RSA private key" in text
    assert "rsa_private_key=" in text
    assert server.handshakes == {"refused": 1}


async def test_key_files_that_do_not_parse(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN RSA PRIVATE KEY-----\nnot base64\n-----END RSA PRIVATE KEY-----\n")
    with pytest.raises(aiofutu.ConfigurationError) as caught:
        async with sim.serve(**QUIET, rsa_key=bad):
            pass
    assert "cannot read an RSA private key from" in _one_line(caught.value)
    with pytest.raises(aiofutu.ConfigurationError) as caught:
        async with sim.serve(**QUIET, rsa_key=str(tmp_path / "missing.pem")):
            pass
    assert "cannot read RSA key file" in _one_line(caught.value)
    with pytest.raises(aiofutu.ConfigurationError) as caught:
        sim.Simulator(rsa_key=b"not a key")
    _one_line(caught.value)
    # and the client with the same file, against an encrypting simulator
    async with sim.serve(**QUIET, rsa_key=generate_private_key_pem(1024)) as server:
        with pytest.raises(aiofutu.ConfigurationError) as caught:
            async with aiofutu.connect(server.host, server.port, rsa_private_key=bad):
                pass
        assert "cannot read an RSA private key" in _one_line(caught.value)
    assert server.handshakes == {}


def test_config_validation(pem: bytes) -> None:
    with pytest.raises(ValueError, match="aes_mode must be one of"):
        sim.SimConfig(rsa_key=pem, aes_mode="ofb")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs rsa_key"):
        sim.SimConfig(aes_mode="cbc")
    with pytest.raises(ValueError, match="rsa_key must be a PEM file path or PEM bytes"):
        sim.SimConfig(rsa_key=1024)  # type: ignore[arg-type]
    assert sim.SimConfig(rsa_key=pem).changed() == {"rsa_key": "<PEM bytes>"}  # no key in logs
    assert sim.SimConfig(rsa_key="k.pem", aes_mode="ecb").changed() == {
        "rsa_key": "k.pem",
        "aes_mode": "ecb",
    }


# ---- a raw client: what aiofutu never sends -------------------------------------------------


class RawClient:
    """Frames by hand: RSA for InitConnect when asked, AES once the reply set it up."""

    def __init__(self, stream: Any, rsa: RsaKey) -> None:
        self.stream = stream
        self.rsa = rsa
        self.aes: AesCipher | None = None
        self.rsa_reply = True  # expect InitConnect's reply RSA-encrypted
        self.decoder = FrameDecoder()
        self.decoder.decrypt = self._decrypt
        self.serial = 0

    @classmethod
    async def open(cls, server: sim.Simulator, pem: bytes) -> RawClient:
        return cls(await anyio.connect_tcp(server.host, server.port), RsaKey(pem))

    def _decrypt(self, proto_id: int, body: bytes) -> bytes:
        if proto_id == 1001:
            return self.rsa.decrypt(body) if self.rsa_reply else body
        return body if self.aes is None else self.aes.decrypt(body)

    async def send(self, proto_id: int, message: Any, *, encrypt: bool = True) -> int:
        self.serial += 1
        enc = None
        if encrypt and proto_id == 1001:
            enc = self.rsa.encrypt
        elif encrypt and self.aes is not None:
            enc = self.aes.encrypt
        body = message.SerializeToString()
        await self.stream.send(encode_frame(proto_id, self.serial, body, encrypt=enc))
        return self.serial

    async def frame(self, timeout: float = 5.0) -> Frame:
        with anyio.fail_after(timeout):
            while True:
                frame = self.decoder.next_frame()
                if frame is not None:
                    return frame
                self.decoder.feed(await self.stream.receive(1 << 20))

    async def init(
        self,
        algo: int | None,
        *,
        encrypt: bool = True,
        rsa_reply: bool = True,
        push_fmt: int = 0,
    ) -> init_connect_pb2.Response:
        c2s = init_connect_pb2.C2S(clientVer=300, clientID="raw", pushProtoFmt=push_fmt)
        if algo is not None:
            c2s.packetEncAlgo = algo
        self.rsa_reply = rsa_reply
        serial = await self.send(1001, init_connect_pb2.Request(c2s=c2s), encrypt=encrypt)
        frame = await self.frame()
        assert (frame.proto_id, frame.serial) == (1001, serial)
        reply = init_connect_pb2.Response.FromString(frame.body)
        if reply.retType == 0 and rsa_reply:
            s2c = reply.s2c
            self.aes = AesCipher(s2c.connAESKey, s2c.aesCBCiv if s2c.HasField("aesCBCiv") else None)
        return reply

    async def keepalive(self) -> keep_alive_pb2.Response:
        serial = await self.send(1004, keep_alive_pb2.Request(c2s=keep_alive_pb2.C2S(time=1)))
        frame = await self.frame()
        assert (frame.proto_id, frame.serial) == (1004, serial)
        return keep_alive_pb2.Response.FromString(frame.body)

    async def subscribe(self, code: str) -> None:
        c2s = qot_sub_pb2.C2S(
            securityList=[qot_common_pb2.Security(market=1, code=code.split(".")[1])],
            subTypeList=[4],
            isSubOrUnSub=True,
            isRegOrUnRegPush=True,
            isFirstPush=False,
        )
        serial = await self.send(3001, qot_sub_pb2.Request(c2s=c2s))
        frame = await self.frame()
        assert (frame.proto_id, frame.serial) == (3001, serial)
        assert qot_sub_pb2.Response.FromString(frame.body).retType == 0

    async def closed(self) -> bool:
        """True once the simulator closed the connection (EOF)."""
        with anyio.fail_after(5):
            try:
                await self.stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return True
        return False


def _push_json_or_pb(frame: Frame) -> list[dict[str, Any]]:
    from google.protobuf import json_format

    from aiofutu._pb import qot_update_ticker_pb2

    assert frame.proto_id == 3011
    if frame.fmt == 1:
        doc = json.loads(frame.body)
    else:
        message = qot_update_ticker_pb2.Response.FromString(frame.body)
        doc = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return [{**t, "sequence": int(t["sequence"])} for t in doc["s2c"]["tickerList"]]


@pytest.mark.parametrize(("algo", "mode"), [(None, "ecb"), (0, "ecb"), (2, "cbc")])
async def test_packet_enc_algo_selects_the_mode(pem: bytes, algo: int | None, mode: str) -> None:
    """OpenD's default, when the algorithm is not given, is its ECB variant (FTAES_ECB)."""
    async with sim.serve(**QUIET, rsa_key=pem) as server:
        raw = await RawClient.open(server, pem)
        async with raw.stream:
            reply = await raw.init(algo)
            assert reply.retType == 0
            assert reply.s2c.HasField("aesCBCiv") == (mode == "cbc")
            assert (await raw.keepalive()).retType == 0
    assert server.handshakes == {f"aes-{mode}": 1}


async def test_forced_mode_overrides_the_request(pem: bytes) -> None:
    async with sim.serve(**QUIET, rsa_key=pem, aes_mode="cbc") as server:
        raw = await RawClient.open(server, pem)
        async with raw.stream:
            reply = await raw.init(0)  # asks for FTAES_ECB, gets CBC: the IV says so
            assert len(reply.s2c.aesCBCiv) == 16
            assert (await raw.keepalive()).retType == 0


async def test_rsa_init_without_algorithm_is_a_plain_session(pem: bytes) -> None:
    """packetEncAlgo=-1 (None): what the SDK sends with a key file and encryption off."""
    async with sim.serve(**QUIET, rsa_key=pem) as server:
        raw = await RawClient.open(server, pem)
        async with raw.stream:
            reply = await raw.init(-1, rsa_reply=False)  # a plain-text reply
            assert reply.retType == 0
            assert raw.aes is None
            assert (await raw.keepalive()).retType == 0  # plain text both ways
    assert server.handshakes == {"plain": 1}


@pytest.mark.parametrize(
    ("algo", "message"),
    [
        (1, "packetEncAlgo 1 (standard AES-ECB) is not supported"),
        (7, "unknown packetEncAlgo 7"),
    ],
)
async def test_unusable_algorithm_is_refused_and_closed(
    pem: bytes, algo: int, message: str
) -> None:
    async with sim.serve(**QUIET, rsa_key=pem) as server:
        raw = await RawClient.open(server, pem)
        async with raw.stream:
            reply = await raw.init(algo, rsa_reply=False)
            assert reply.retType == -1
            assert reply.errCode == int(sim.ErrCode.ENCRYPTION)
            assert reply.retMsg.startswith(message)
            assert await raw.closed()
    assert server.handshakes == {"refused": 1}
    assert server.connection_count == 0


async def test_plain_init_is_refused_in_plain_text_then_closed(pem: bytes) -> None:
    async with sim.serve(**QUIET, rsa_key=pem) as server:
        raw = await RawClient.open(server, pem)
        async with raw.stream:
            serial = await raw.send(1004, keep_alive_pb2.Request(c2s=keep_alive_pb2.C2S(time=1)))
            early = await raw.frame()  # before InitConnect: refused, in plain text
            assert (early.proto_id, early.serial) == (1004, serial)
            assert "InitConnect (1001) must be the first request" in (
                keep_alive_pb2.Response.FromString(early.body).retMsg
            )
            reply = await raw.init(2, encrypt=False, rsa_reply=False)
            assert reply.retType == -1
            assert "requires encryption" in reply.retMsg
            assert await raw.closed()


async def test_json_pushes_are_encrypted(pem: bytes) -> None:
    async with sim.serve(**QUIET, rsa_key=pem, aes_mode="ecb") as server:
        raw = await RawClient.open(server, pem)
        async with raw.stream:
            await raw.init(2, push_fmt=1)
            await raw.subscribe(HK)
            server.push_ticks(server.market.security(HK), server.market.generate(HK, 2))
            await server.burst(HK, 30, ticks_per_push=3)
            frames = [await raw.frame() for _ in range(12)]
    assert {f.fmt for f in frames} == {1}
    sequences = [t["sequence"] for f in frames for t in _push_json_or_pb(f)]
    assert sequences == [t.sequence for t in server.market.history(HK)[-32:]]


async def test_plain_json_init_is_refused_even_when_replies_are_slow(pem: bytes) -> None:
    """A JSON InitConnect reads as plain text too; a refusal is not held back by reply_delay."""
    async with sim.serve(**QUIET, rsa_key=pem, reply_delay=3) as server:
        raw = await RawClient.open(server, pem)
        async with raw.stream:
            body = json.dumps({"c2s": {"clientVer": 300, "clientID": "json"}}).encode()
            await raw.stream.send(encode_frame(1001, 9, body, fmt=1))
            raw.rsa_reply = False
            frame = await raw.frame(timeout=2)
            reply = json.loads(frame.body)
            assert (frame.serial, frame.fmt, reply["retType"]) == (9, 1, -1)
            assert "requires encryption" in reply["retMsg"]
            assert await raw.closed()
    assert server.handshakes == {"refused": 1}
