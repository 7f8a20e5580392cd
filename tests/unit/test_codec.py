"""The sans-IO frame codec: header layout, incremental decoding, and every error path."""

from __future__ import annotations

import hashlib
import random
import struct
import time

import pytest

from aiofutu import FutuError, LocalProtocolError, ProtocolError, RemoteProtocolError
from aiofutu._codec import (
    DEFAULT_MAX_BODY,
    HEADER_SIZE,
    MAGIC,
    Frame,
    FrameDecoder,
    encode_frame,
)

U32_MAX = 2**32 - 1


def raw_frame(
    proto_id: int,
    serial: int,
    body: bytes,
    *,
    magic: bytes = b"FT",
    fmt: int = 0,
    ver: int = 0,
    digest: bytes | None = None,
    body_len: int | None = None,
    reserved: bytes = bytes(8),
) -> bytes:
    """A frame built field by field, independently of ``encode_frame``, so it can lie."""
    return (
        magic
        + struct.pack("<I", proto_id)
        + bytes([fmt, ver])
        + struct.pack("<I", serial)
        + struct.pack("<I", len(body) if body_len is None else body_len)
        + (hashlib.sha1(body).digest() if digest is None else digest)
        + reserved
        + body
    )


def drain(decoder: FrameDecoder) -> list[Frame]:
    out = []
    while (frame := decoder.next_frame()) is not None:
        out.append(frame)
    return out


# --------------------------------------------------------------------------- constants / layout


def test_constants() -> None:
    assert HEADER_SIZE == 44
    assert MAGIC == b"FT"
    assert DEFAULT_MAX_BODY == 64 * 1024 * 1024


def test_header_layout_byte_for_byte() -> None:
    body = b"\x0a\x12hello protobuf body"
    data = encode_frame(3010, 0x01020304, body, fmt=1, version=7)

    assert len(data) == 44 + len(body)
    assert data[0:2] == b"FT"
    assert data[0] == 0x46
    assert data[1] == 0x54
    assert data[2:6] == (3010).to_bytes(4, "little") == b"\xc2\x0b\x00\x00"
    assert data[6] == 1  # fmt
    assert data[7] == 7  # version
    assert data[8:12] == b"\x04\x03\x02\x01"  # serial, little-endian
    assert data[12:16] == len(body).to_bytes(4, "little")
    assert data[16:36] == hashlib.sha1(body).digest()
    assert data[36:44] == bytes(8)
    assert data[44:] == body


def test_encode_matches_independent_builder() -> None:
    body = bytes(range(200))
    assert encode_frame(1001, 4294967294, body) == raw_frame(1001, 4294967294, body)
    assert encode_frame(3011, 0, b"") == raw_frame(3011, 0, b"")


def test_encode_defaults_fmt_and_version_to_zero() -> None:
    data = encode_frame(1004, 5, b"x")
    assert data[6] == 0
    assert data[7] == 0


def test_encode_empty_body_sha1_is_sha1_of_empty() -> None:
    data = encode_frame(3001, 9, b"")
    assert len(data) == 44
    assert data[12:16] == bytes(4)
    assert data[16:36] == hashlib.sha1(b"").digest()


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("proto_id", [0, 1001, 3010, 3011, U32_MAX])
@pytest.mark.parametrize("serial", [0, 1, 7457, U32_MAX])
def test_round_trip_ids(proto_id: int, serial: int) -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame(proto_id, serial, b"payload"))
    assert decoder.next_frame() == Frame(proto_id, serial, b"payload", 0, 0)
    assert decoder.next_frame() is None
    assert decoder.buffered == 0


@pytest.mark.parametrize("size", [0, 1, 43, 44, 45, 1000, 65536])
def test_round_trip_body_sizes(size: int) -> None:
    body = random.Random(size).randbytes(size)
    decoder = FrameDecoder()
    decoder.feed(encode_frame(3010, 42, body, fmt=1, version=2))
    frame = decoder.next_frame()
    assert frame is not None
    assert frame.proto_id == 3010
    assert frame.serial == 42
    assert frame.body == body
    assert type(frame.body) is bytes
    assert frame.fmt == 1
    assert frame.version == 2


def test_decodes_hand_built_frame() -> None:
    data = raw_frame(3011, 99, b"push", fmt=0, ver=0, reserved=b"\xff" * 8)
    decoder = FrameDecoder()
    decoder.feed(data)
    # reserved bytes are ignored, as the SDK does
    assert decoder.next_frame() == Frame(3011, 99, b"push")


def test_empty_body_frame_decodes_immediately() -> None:
    # The SDK waits for a 45th byte here (its `<= 44` check); we must not.
    decoder = FrameDecoder()
    decoder.feed(encode_frame(3001, 5, b""))
    assert decoder.buffered == 44
    assert decoder.next_frame() == Frame(3001, 5, b"")
    assert decoder.buffered == 0
    assert decoder.next_frame() is None


def test_consecutive_empty_body_frames() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame(1, 1, b"") + encode_frame(2, 2, b"") + encode_frame(3, 3, b""))
    assert [(f.proto_id, f.body) for f in drain(decoder)] == [(1, b""), (2, b""), (3, b"")]


def test_feed_one_byte_at_a_time() -> None:
    frames = [Frame(1001, 1, b"init"), Frame(3001, 2, b""), Frame(3010, 3, bytes(range(256)))]
    stream = b"".join(encode_frame(f.proto_id, f.serial, f.body) for f in frames)
    ends = []
    pos = 0
    for f in frames:
        pos += 44 + len(f.body)
        ends.append(pos)

    decoder = FrameDecoder()
    got: list[tuple[int, Frame]] = []
    for i in range(len(stream)):
        decoder.feed(stream[i : i + 1])
        frame = decoder.next_frame()
        if frame is not None:
            got.append((i + 1, frame))
        assert decoder.next_frame() is None
    # each frame comes out exactly when its last byte arrives, and not before
    assert got == list(zip(ends, frames, strict=True))
    assert decoder.buffered == 0


def test_many_frames_in_one_chunk() -> None:
    frames = [Frame(3000 + i, i, bytes([i]) * i) for i in range(200)]
    decoder = FrameDecoder()
    decoder.feed(b"".join(encode_frame(f.proto_id, f.serial, f.body) for f in frames))
    assert list(decoder) == frames
    assert decoder.next_frame() is None
    assert decoder.buffered == 0


def test_chunk_ending_mid_frame_keeps_the_rest() -> None:
    a = encode_frame(3010, 1, b"first")
    b = encode_frame(3010, 2, b"second frame body")
    stream = a + b
    cut = len(a) + 30  # inside b's header
    decoder = FrameDecoder()
    decoder.feed(stream[:cut])
    assert decoder.next_frame() == Frame(3010, 1, b"first")
    assert decoder.next_frame() is None
    assert decoder.buffered == 30
    decoder.feed(stream[cut:])
    assert decoder.next_frame() == Frame(3010, 2, b"second frame body")
    assert decoder.buffered == 0


def test_feed_accepts_bytearray_and_memoryview_and_copies() -> None:
    data = bytearray(encode_frame(3010, 7, b"mutable"))
    decoder = FrameDecoder()
    decoder.feed(memoryview(data)[:20])
    decoder.feed(data[20:])
    data[:] = bytes(len(data))  # the caller reuses its buffer
    assert decoder.next_frame() == Frame(3010, 7, b"mutable")


def test_feed_empty_is_a_no_op() -> None:
    decoder = FrameDecoder()
    decoder.feed(b"")
    decoder.feed(bytearray())
    assert decoder.buffered == 0
    assert decoder.next_frame() is None


def test_iterator_stops_on_incomplete_frame_and_resumes() -> None:
    data = encode_frame(1, 1, b"a") + encode_frame(2, 2, b"b")
    decoder = FrameDecoder()
    decoder.feed(data[:-1])
    assert [f.proto_id for f in decoder] == [1]
    decoder.feed(data[-1:])
    assert [f.proto_id for f in decoder] == [2]


# --------------------------------------------------------------------------- buffered accounting


def test_buffered_accounting() -> None:
    a = encode_frame(3010, 1, b"x" * 100)  # 144 bytes
    b = encode_frame(3011, 2, b"y" * 10)  # 54 bytes
    decoder = FrameDecoder()
    assert decoder.buffered == 0
    decoder.feed(a[:10])
    assert decoder.buffered == 10
    assert decoder.next_frame() is None
    assert decoder.buffered == 10
    decoder.feed(a[10:50])
    assert decoder.buffered == 50
    assert decoder.next_frame() is None  # header known, body incomplete
    assert decoder.buffered == 50
    decoder.feed(a[50:] + b[:20])
    assert decoder.buffered == 164
    assert decoder.next_frame() is not None
    assert decoder.buffered == 20
    assert decoder.next_frame() is None
    decoder.feed(b[20:])
    assert decoder.buffered == 54
    assert decoder.next_frame() is not None
    assert decoder.buffered == 0


# --------------------------------------------------------------------------- bad magic


def _assert_broken(decoder: FrameDecoder, error: RemoteProtocolError) -> None:
    assert decoder.broken
    for _ in range(3):
        with pytest.raises(RemoteProtocolError) as later:
            decoder.next_frame()
        assert later.value.recoverable is False
        assert str(later.value) == str(error)
    with pytest.raises(RemoteProtocolError):
        decoder.feed(encode_frame(1004, 1, b"fine"))
    with pytest.raises(RemoteProtocolError):
        list(decoder)


def test_bad_magic_is_fatal_and_sticky() -> None:
    decoder = FrameDecoder()
    assert not decoder.broken
    decoder.feed(raw_frame(3010, 77, b"body", magic=b"XY") + encode_frame(1004, 78, b"ok"))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()
    err = info.value
    assert isinstance(err, ProtocolError)
    assert isinstance(err, FutuError)
    assert err.recoverable is False
    assert err.proto_id == 3010
    assert err.serial == 77
    message = str(err)
    assert "magic" in message
    assert "XY" in message
    assert "proto_id=3010" in message
    assert "serial=77" in message
    _assert_broken(decoder, err)


def test_bad_magic_after_a_good_frame() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame(3010, 1, b"good") + raw_frame(3011, 2, b"", magic=b"ft"))
    assert decoder.next_frame() == Frame(3010, 1, b"good")
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()
    assert info.value.recoverable is False
    assert info.value.serial == 2
    _assert_broken(decoder, info.value)


def test_bad_magic_detected_with_header_only() -> None:
    decoder = FrameDecoder()
    header = raw_frame(3010, 3, b"x" * 1000, magic=b"GE")[:44]
    decoder.feed(header[:43])
    assert decoder.next_frame() is None
    decoder.feed(header[43:])
    with pytest.raises(RemoteProtocolError):
        decoder.next_frame()
    assert decoder.broken


# --------------------------------------------------------------------------- SHA1


def test_bad_sha1_in_digest_is_recoverable() -> None:
    bad = raw_frame(3011, 10, b"tampered", digest=b"\x00" * 20)
    good = encode_frame(3011, 11, b"next")
    decoder = FrameDecoder()
    decoder.feed(bad + good)
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()
    err = info.value
    assert err.recoverable is True
    assert err.proto_id == 3011
    assert err.serial == 10
    assert "SHA1" in str(err)
    assert "proto_id=3011" in str(err)
    assert "serial=10" in str(err)
    assert not decoder.broken
    assert decoder.buffered == len(good)  # the bad frame was consumed
    assert decoder.next_frame() == Frame(3011, 11, b"next")
    assert decoder.buffered == 0


def test_drain_defers_a_bad_frame_met_after_good_ones() -> None:
    good = encode_frame(3011, 1, b"a")
    bad = raw_frame(3011, 2, b"tampered", digest=b"\x00" * 20)
    later = encode_frame(3011, 3, b"c")
    decoder = FrameDecoder()
    decoder.feed(good + bad + later)
    assert not decoder.has_deferred_error
    assert decoder.drain() == [Frame(3011, 1, b"a")]
    assert decoder.has_deferred_error
    with pytest.raises(RemoteProtocolError) as info:
        decoder.drain()
    assert info.value.serial == 2
    assert not decoder.has_deferred_error
    assert decoder.drain() == [Frame(3011, 3, b"c")]
    assert not decoder.has_deferred_error


def test_bad_sha1_from_flipped_body_byte_is_recoverable() -> None:
    bad = bytearray(encode_frame(3010, 20, b"some body bytes"))
    bad[50] ^= 0x01
    decoder = FrameDecoder()
    decoder.feed(bytes(bad))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()
    assert info.value.recoverable
    assert decoder.next_frame() is None
    decoder.feed(encode_frame(3010, 21, b"later"))
    assert decoder.next_frame() == Frame(3010, 21, b"later")


def test_bad_sha1_split_across_feeds() -> None:
    bad = raw_frame(3010, 1, b"abcdef", digest=b"\x11" * 20)
    decoder = FrameDecoder()
    decoder.feed(bad[:47])
    assert decoder.next_frame() is None
    decoder.feed(bad[47:] + encode_frame(3010, 2, b"ok"))
    with pytest.raises(RemoteProtocolError):
        decoder.next_frame()
    assert decoder.next_frame() == Frame(3010, 2, b"ok")


def test_verify_sha1_false_accepts_bad_digest() -> None:
    decoder = FrameDecoder(verify_sha1=False)
    decoder.feed(raw_frame(3010, 1, b"body", digest=b"\x00" * 20))
    assert decoder.next_frame() == Frame(3010, 1, b"body")


# --------------------------------------------------------------------------- body length limit


def test_oversized_body_rejected_from_header_alone() -> None:
    decoder = FrameDecoder(max_body=1000)
    header = raw_frame(3010, 5, b"", body_len=1001)
    assert len(header) == 44
    decoder.feed(header[:43])
    assert decoder.next_frame() is None
    assert not decoder.broken
    decoder.feed(header[43:])  # only the header: no body byte was ever fed
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()
    err = info.value
    assert err.recoverable is False
    assert err.proto_id == 3010
    assert err.serial == 5
    assert "1001" in str(err)
    assert "1000" in str(err)
    assert decoder.buffered == 44  # the body was never waited for
    _assert_broken(decoder, err)


def test_body_at_the_limit_is_accepted() -> None:
    decoder = FrameDecoder(max_body=1000)
    data = encode_frame(3010, 6, b"z" * 1000)
    decoder.feed(data[:44])
    assert decoder.next_frame() is None
    assert not decoder.broken
    decoder.feed(data[44:])
    assert decoder.next_frame() == Frame(3010, 6, b"z" * 1000)


def test_default_limit_is_64_mib() -> None:
    decoder = FrameDecoder()
    assert decoder.max_body == DEFAULT_MAX_BODY
    decoder.feed(raw_frame(3011, 1, b"", body_len=DEFAULT_MAX_BODY))
    assert decoder.next_frame() is None  # exactly the limit: just waits for the body
    assert not decoder.broken

    decoder = FrameDecoder()
    decoder.feed(raw_frame(3011, 1, b"", body_len=DEFAULT_MAX_BODY + 1))
    with pytest.raises(RemoteProtocolError):
        decoder.next_frame()
    assert decoder.broken


def test_max_u32_body_length_rejected_by_default() -> None:
    decoder = FrameDecoder()
    decoder.feed(raw_frame(3011, 1, b"", body_len=U32_MAX))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()
    assert not info.value.recoverable


def test_zero_limit_allows_only_empty_bodies() -> None:
    decoder = FrameDecoder(max_body=0)
    decoder.feed(encode_frame(1, 1, b""))
    assert decoder.next_frame() == Frame(1, 1, b"")
    decoder.feed(encode_frame(1, 2, b"x"))
    with pytest.raises(RemoteProtocolError):
        decoder.next_frame()


def test_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_body"):
        FrameDecoder(max_body=-1)


# --------------------------------------------------------------------------- decrypt hook


def _xor(data: bytes) -> bytes:
    return bytes(b ^ 0x5A for b in data)


def _encrypt_padded(data: bytes) -> bytes:
    """A toy cipher whose output length differs from its input length."""
    return _xor(data) + b"\x00\x00\x00" + bytes([len(data) % 256])


def _decrypt_padded(proto_id: int, wire: bytes) -> bytes:
    return _xor(wire[:-4])


def test_decrypt_hook_runs_before_sha1_check() -> None:
    plain = b"secret protobuf body"
    data = encode_frame(3010, 3, plain, encrypt=_encrypt_padded)
    # header: length of the wire (cipher) body, SHA1 of the plaintext
    assert struct.unpack_from("<I", data, 12)[0] == len(plain) + 4
    assert data[16:36] == hashlib.sha1(plain).digest()
    assert data[44:] != plain

    seen: list[tuple[int, bytes]] = []

    def decrypt(proto_id: int, wire: bytes) -> bytes:
        seen.append((proto_id, wire))
        return _decrypt_padded(proto_id, wire)

    decoder = FrameDecoder()
    decoder.decrypt = decrypt
    decoder.feed(data)
    assert decoder.next_frame() == Frame(3010, 3, plain)
    assert seen == [(3010, data[44:])]


def test_decrypt_hook_digest_over_ciphertext_fails() -> None:
    # A peer that hashed the wire body instead of the plaintext is caught.
    plain = b"body"
    wire = _xor(plain)
    decoder = FrameDecoder()
    decoder.decrypt = lambda proto_id, body: _xor(body)
    decoder.feed(raw_frame(3010, 1, wire, digest=hashlib.sha1(wire).digest()))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()
    assert info.value.recoverable


def test_without_decrypt_hook_an_encrypted_frame_fails_sha1() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame(3010, 1, b"plain", encrypt=_xor))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()
    assert info.value.recoverable


def test_decrypt_exception_becomes_recoverable_error() -> None:
    def broken_decrypt(proto_id: int, wire: bytes) -> bytes:
        if wire.startswith(b"bad"):
            raise ValueError("padding is incorrect")
        return wire

    decoder = FrameDecoder()
    decoder.decrypt = broken_decrypt
    decoder.feed(encode_frame(3011, 8, b"bad cipher") + encode_frame(3011, 9, b"good"))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()
    err = info.value
    assert err.recoverable is True
    assert err.proto_id == 3011
    assert err.serial == 8
    assert "decrypt" in str(err)
    assert "padding is incorrect" in str(err)
    assert not decoder.broken
    assert decoder.next_frame() == Frame(3011, 9, b"good")


def test_decrypt_remote_protocol_error_passes_through() -> None:
    original = RemoteProtocolError("custom", proto_id=1, serial=2, recoverable=True)

    def decrypt(proto_id: int, wire: bytes) -> bytes:
        raise original

    decoder = FrameDecoder()
    decoder.decrypt = decrypt
    decoder.feed(encode_frame(3011, 1, b"x") + encode_frame(3011, 2, b"y"))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()
    # the hook's own error comes through, re-labelled with the frame it was raised for
    assert info.value.reason == original.reason
    assert info.value.recoverable is True
    assert (info.value.proto_id, info.value.serial) == (3011, 1)
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()  # the second frame also goes through the hook
    assert info.value.serial == 2


def test_encode_with_encrypt_hook_gets_plaintext() -> None:
    seen: list[bytes] = []

    def encrypt(body: bytes) -> bytes:
        seen.append(body)
        return b"CIPHER"

    data = encode_frame(3010, 1, b"plaintext", encrypt=encrypt)
    assert seen == [b"plaintext"]
    assert data[12:16] == (6).to_bytes(4, "little")
    assert data[16:36] == hashlib.sha1(b"plaintext").digest()
    assert data[44:] == b"CIPHER"


# ------------------------------------------------------------------------- encode_frame validation


@pytest.mark.parametrize(
    ("proto_id", "serial"),
    [(-1, 0), (2**32, 0), (0, -1), (0, 2**32), (2**40, 2**40)],
)
def test_encode_rejects_out_of_range_ids(proto_id: int, serial: int) -> None:
    with pytest.raises(LocalProtocolError) as info:
        encode_frame(proto_id, serial, b"")
    assert not isinstance(info.value, RemoteProtocolError)
    assert isinstance(info.value, ProtocolError)
    assert isinstance(info.value, FutuError)
    assert "32-bit" in str(info.value)


@pytest.mark.parametrize(("fmt", "version"), [(-1, 0), (256, 0), (0, -1), (0, 256)])
def test_encode_rejects_out_of_range_fmt_and_version(fmt: int, version: int) -> None:
    with pytest.raises(LocalProtocolError):
        encode_frame(3010, 1, b"", fmt=fmt, version=version)


def test_encode_boundaries_are_accepted() -> None:
    data = encode_frame(U32_MAX, U32_MAX, b"", fmt=255, version=255)
    decoder = FrameDecoder()
    decoder.feed(data)
    assert decoder.next_frame() == Frame(U32_MAX, U32_MAX, b"", 255, 255)


# --------------------------------------------------------------------------- performance shape


def test_large_body_in_small_chunks_is_linear() -> None:
    body = random.Random(5).randbytes(5 * 1024 * 1024)
    data = encode_frame(3010, 1, body)
    decoder = FrameDecoder()
    started = time.perf_counter()
    frames = []
    for i in range(0, len(data), 4096):
        decoder.feed(data[i : i + 4096])
        frame = decoder.next_frame()
        if frame is not None:
            frames.append(frame)
    elapsed = time.perf_counter() - started
    assert len(frames) == 1
    assert frames[0].body == body
    assert decoder.buffered == 0
    assert elapsed < 1.0, f"5 MB in 4 KiB chunks took {elapsed:.2f}s (quadratic buffering?)"


def test_many_small_frames_in_small_chunks_is_linear() -> None:
    stream = b"".join(encode_frame(3011, i, b"t" * (i % 50)) for i in range(20_000))
    decoder = FrameDecoder()
    started = time.perf_counter()
    count = 0
    for i in range(0, len(stream), 4096):
        decoder.feed(stream[i : i + 4096])
        count += len(drain(decoder))
    elapsed = time.perf_counter() - started
    assert count == 20_000
    assert decoder.buffered == 0
    assert elapsed < 1.0, f"20k frames took {elapsed:.2f}s"
