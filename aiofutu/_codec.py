"""Sans-IO frame codec for the OpenD wire format.

A frame is a 44-byte little-endian header (``FT`` magic, protocol id, body format, version,
serial number, body length, SHA1 of the plaintext body, 8 reserved bytes) followed by the body.
Nothing here knows about sockets or event loops: bytes go in, :class:`Frame` objects come out.
"""

from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING, NamedTuple

from .errors import LocalProtocolError, RemoteProtocolError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = (
    "DEFAULT_MAX_BODY",
    "HEADER_SIZE",
    "MAGIC",
    "Frame",
    "FrameDecoder",
    "encode_frame",
)

MAGIC = b"FT"
HEADER = struct.Struct("<2sIBBII20s8s")
HEADER_SIZE = HEADER.size  # 44
DEFAULT_MAX_BODY = 64 * 1024 * 1024
_RESERVED = bytes(8)
_U32 = 0xFFFFFFFF
_sha1 = hashlib.sha1
_pack = HEADER.pack
_unpack_from = HEADER.unpack_from


class Frame(NamedTuple):
    """One decoded frame. ``body`` is the plaintext (decrypted, SHA1-checked) body."""

    proto_id: int
    serial: int
    body: bytes
    fmt: int = 0
    version: int = 0


_new_frame = Frame.__new__


def encode_frame(
    proto_id: int,
    serial: int,
    body: bytes,
    *,
    fmt: int = 0,
    version: int = 0,
    encrypt: Callable[[bytes], bytes] | None = None,
) -> bytes:
    """Build a frame. The SHA1 covers the plaintext; ``encrypt`` (if any) produces the wire body."""
    if not (0 <= proto_id <= _U32 and 0 <= serial <= _U32):
        raise LocalProtocolError(
            "proto_id and serial must fit in an unsigned 32-bit integer",
            proto_id=proto_id,
            serial=serial,
        )
    if not (0 <= fmt <= 255 and 0 <= version <= 255):
        raise LocalProtocolError("fmt and version must fit in a byte", proto_id=proto_id)
    digest = _sha1(body).digest()
    wire = body if encrypt is None else encrypt(body)
    return _pack(MAGIC, proto_id, fmt, version, serial, len(wire), digest, _RESERVED) + wire


class FrameDecoder:
    """Incremental decoder: ``feed()`` any chunking of the byte stream, then pull frames.

    Checks the magic, the body length limit (as soon as a header is complete, before the body is
    buffered) and the SHA1 of the body. A bad SHA1 or a body that cannot be decrypted consumes just
    that frame and raises a *recoverable* :class:`RemoteProtocolError`; decoding may go on. A bad
    magic or an oversized length loses the framing: the error is raised now and on every later call.

    Incoming chunks are kept in a list until a whole frame can be cut, so a large body delivered in
    many small reads is joined once, not once per read.
    """

    def __init__(self, max_body: int = DEFAULT_MAX_BODY, *, verify_sha1: bool = True) -> None:
        if max_body < 0:
            raise ValueError("max_body must be >= 0")
        self.max_body = max_body
        self.verify_sha1 = verify_sha1
        #: Optional ``(proto_id, wire_body) -> plaintext`` hook, set once a session is encrypted.
        self.decrypt: Callable[[int, bytes], bytes] | None = None
        self._buf = b""
        self._pos = 0
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._error: RemoteProtocolError | None = None
        self._deferred: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as frames."""
        return len(self._buf) - self._pos + self._pending_len

    @property
    def has_deferred_error(self) -> bool:
        """True when the next :meth:`drain` raises the error of a frame met after good ones."""
        return self._deferred is not None

    @property
    def broken(self) -> bool:
        """True once framing is lost; the stream cannot be decoded any further."""
        return self._error is not None

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes."""
        if self._error is not None:
            raise self._error
        if data:
            chunk = data if type(data) is bytes else bytes(data)
            self._pending.append(chunk)
            self._pending_len += len(chunk)

    def next_frame(self) -> Frame | None:
        """The next whole frame, or ``None`` until more bytes are fed."""
        if self._error is not None:
            raise self._error
        while True:
            buf = self._buf
            pos = self._pos
            have = len(buf) - pos
            if have >= HEADER_SIZE:
                magic, proto_id, fmt, ver, serial, body_len, digest, _ = _unpack_from(buf, pos)
                if magic != MAGIC:
                    raise self._fail(f"bad magic {magic!r} (expected b'FT')", proto_id, serial)
                if body_len > self.max_body:
                    raise self._fail(
                        f"body length {body_len} exceeds the limit of {self.max_body} bytes",
                        proto_id,
                        serial,
                    )
                end = pos + HEADER_SIZE + body_len
                if end <= len(buf):
                    body = buf[pos + HEADER_SIZE : end]
                    self._pos = end
                    if self.decrypt is not None:
                        body = self._decrypt(proto_id, serial, body)
                    if self.verify_sha1 and _sha1(body).digest() != digest:
                        raise RemoteProtocolError(
                            "SHA1 of the body does not match the header",
                            proto_id=proto_id,
                            serial=serial,
                            recoverable=True,
                        )
                    return _new_frame(Frame, proto_id, serial, body, fmt, ver)
                need = HEADER_SIZE + body_len
            else:
                need = HEADER_SIZE
            if have + self._pending_len < need:
                return None
            # Enough bytes are waiting: join them once into a fresh buffer.
            if have:
                self._pending.insert(0, buf[pos:])
            self._buf = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pos = 0
            self._pending = []
            self._pending_len = 0

    def _decrypt(self, proto_id: int, serial: int, body: bytes) -> bytes:
        assert self.decrypt is not None
        try:
            return self.decrypt(proto_id, body)
        except RemoteProtocolError as exc:
            raise RemoteProtocolError(
                exc.reason, proto_id=proto_id, serial=serial, recoverable=exc.recoverable
            ) from None
        except Exception as exc:
            raise RemoteProtocolError(
                f"cannot decrypt body: {exc}", proto_id=proto_id, serial=serial, recoverable=True
            ) from None

    def drain(self) -> list[Frame]:
        """Every whole frame buffered now, in order.

        A bad frame met after good ones is raised by the next call, so no good frame is lost.
        """
        deferred = self._deferred
        if deferred is not None:
            self._deferred = None
            raise deferred
        out: list[Frame] = []
        next_frame = self.next_frame
        append = out.append
        while True:
            if self.decrypt is None and self._error is None:
                self._cut_plain(append)
            try:
                frame = next_frame()
            except RemoteProtocolError as exc:
                if out:
                    self._deferred = exc
                    return out
                raise
            if frame is None:
                return out
            append(frame)

    def _cut_plain(self, append: Callable[[Frame], None]) -> None:
        """Cut every whole, valid plaintext frame already in the buffer (the hot loop).

        Stops at anything else (a partial frame, a bad magic, length or SHA1) and leaves it to
        :meth:`next_frame`, which joins more bytes or raises the precise error.
        """
        buf = self._buf
        pos = self._pos
        size = len(buf)
        limit = self.max_body
        verify = self.verify_sha1
        unpack = _unpack_from
        sha1 = _sha1
        new = _new_frame
        while size - pos >= HEADER_SIZE:
            magic, proto_id, fmt, ver, serial, body_len, digest, _ = unpack(buf, pos)
            end = pos + HEADER_SIZE + body_len
            if end > size or magic != MAGIC or body_len > limit:
                break
            body = buf[pos + HEADER_SIZE : end]
            if verify and sha1(body).digest() != digest:
                break
            append(new(Frame, proto_id, serial, body, fmt, ver))
            pos = end
        self._pos = pos

    def _fail(self, message: str, proto_id: int, serial: int) -> RemoteProtocolError:
        self._error = RemoteProtocolError(message, proto_id=proto_id, serial=serial)
        return self._error

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        frame = self.next_frame()
        if frame is None:
            raise StopIteration
        return frame
