"""Body encryption for OpenD's encrypted mode (sans-IO; needs the ``crypto`` extra).

InitConnect travels RSA-encrypted (PKCS#1 v1.5, chunked to the key size); every later body is
AES-128 with the key from the InitConnect reply, either CBC with a fixed per-connection IV or
OpenD's ECB variant (zero padding plus a 16-byte trailer whose last byte is ``len % 16``). The
SHA1 in the frame header always covers the plaintext.
"""

from __future__ import annotations

import os
from typing import Any

from .errors import ConfigurationError, MissingDependency

__all__ = ("AesCipher", "RsaKey", "generate_private_key_pem")

_BLOCK = 16


def _backend() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError:
        raise MissingDependency(
            "encryption needs the 'cryptography' package; install it with: "
            "pip install 'aiofutu[crypto]'"
        ) from None
    return serialization, padding, rsa, Cipher, algorithms, modes


class RsaKey:
    """The RSA private key shared by OpenD and the client (PEM, PKCS#1 or PKCS#8)."""

    def __init__(self, pem: bytes, *, source: str = "the key") -> None:
        serialization, padding, rsa, *_ = _backend()
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"cannot read an RSA private key from {source}: {exc} (expected a PEM file "
                "like OpenD's, starting with '-----BEGIN RSA PRIVATE KEY-----')"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigurationError(
                f"{source} holds a {type(key).__name__}, not an RSA private key"
            )
        self._key = key
        self._public = key.public_key()
        self._pad = padding.PKCS1v15()
        self.size = key.key_size // 8  # ciphertext block, e.g. 128 bytes for 1024-bit keys
        self.chunk = self.size - 11  # PKCS#1 v1.5 overhead

    @classmethod
    def option(cls, value: object) -> tuple[RsaKey | None, str | None]:
        """``connect(rsa_private_key=value)``: PEM bytes parsed now, or a path to read later."""
        if value is None:
            return None, None
        if isinstance(value, bytes):
            return cls(value), None
        if not isinstance(value, (str, os.PathLike)):
            raise ConfigurationError(
                f"rsa_private_key must be PEM bytes or the path of a PEM file, got {value!r}"
            )
        return None, os.fspath(value)

    @classmethod
    def load(cls, key: str | os.PathLike[str] | bytes) -> RsaKey:
        """From PEM bytes, or from the path of a PEM file."""
        if isinstance(key, bytes):
            return cls(key, source="the PEM bytes given")
        path = os.fspath(key)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read RSA key file {path!r}: {exc.strerror or exc}"
            ) from None
        return cls(data, source=repr(path))

    def encrypt(self, data: bytes) -> bytes:
        """PKCS#1 v1.5, in chunks of ``size - 11`` bytes (100 for OpenD's usual 1024-bit key)."""
        enc = self._public.encrypt
        pad = self._pad
        step = self.chunk
        return b"".join(enc(data[i : i + step], pad) for i in range(0, len(data), step)) or enc(
            b"", pad
        )

    def decrypt(self, data: bytes) -> bytes:
        """Inverse of :meth:`encrypt`; raises ValueError on a wrong key or a damaged body."""
        size = self.size
        if not data or len(data) % size:
            raise ValueError(f"RSA body of {len(data)} bytes is not a multiple of {size}")
        dec = self._key.decrypt
        pad = self._pad
        return b"".join(dec(data[i : i + size], pad) for i in range(0, len(data), size))

    def private_pem(self) -> bytes:
        serialization = _backend()[0]
        data: bytes = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        return data


def generate_private_key_pem(bits: int = 1024) -> bytes:
    """A fresh PKCS#1 PEM private key (OpenD's format; the official SDK assumes 1024 bits)."""
    serialization, _, rsa, *_ = _backend()
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return pem


class AesCipher:
    """AES-128 for one connection: ``iv`` given means CBC, ``None`` means OpenD's ECB variant."""

    def __init__(self, key: str | bytes, iv: str | bytes | None) -> None:
        _, _, _, Cipher, algorithms, modes = _backend()
        key_bytes = key.encode() if isinstance(key, str) else key
        if len(key_bytes) not in (16, 24, 32):
            raise ValueError(f"AES key must be 16, 24 or 32 bytes, got {len(key_bytes)}")
        algorithm = algorithms.AES(key_bytes)
        # One long-lived ECB decryptor serves every packet: ECB keeps no state between blocks,
        # and CBC decryption is ECB decryption XOR the previous ciphertext block (or the IV).
        self._block_decrypt = Cipher(algorithm, modes.ECB()).decryptor().update
        self._iv = b""
        if iv is None:
            self.mode = "ecb"
            self._cipher = Cipher(algorithm, modes.ECB())
        else:
            iv_bytes = iv.encode() if isinstance(iv, str) else iv
            if len(iv_bytes) != _BLOCK:
                raise ValueError(f"AES-CBC IV must be 16 bytes, got {len(iv_bytes)}")
            self.mode = "cbc"
            self._iv = iv_bytes
            self._cipher = Cipher(algorithm, modes.CBC(iv_bytes))

    def encrypt(self, data: bytes) -> bytes:
        enc = self._cipher.encryptor()
        if self.mode == "cbc":
            pad = _BLOCK - len(data) % _BLOCK  # PKCS#7: always 1..16 bytes
            return bytes(enc.update(data + bytes((pad,)) * pad) + enc.finalize())
        rem = len(data) % _BLOCK
        body = data + bytes(_BLOCK - rem) if rem else data
        return bytes(enc.update(body) + enc.finalize()) + bytes(15) + bytes((rem,))

    def decrypt(self, data: bytes) -> bytes:
        n = len(data)
        if self.mode == "cbc":
            if not n or n % _BLOCK:
                raise ValueError(f"AES-CBC body of {n} bytes is not whole blocks")
            blocks = self._block_decrypt(data)
            chain = self._iv + data[:-_BLOCK]
            plain = (int.from_bytes(blocks, "big") ^ int.from_bytes(chain, "big")).to_bytes(
                n, "big"
            )
            pad = plain[-1]
            if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes((pad,)) * pad:
                raise ValueError("bad PKCS#7 padding (wrong AES key?)")
            return plain[:-pad]
        if n < _BLOCK or n % _BLOCK:
            raise ValueError(f"AES-ECB body of {n} bytes is not whole blocks + trailer")
        rem = data[-1]
        if rem >= _BLOCK or any(data[-_BLOCK:-1]):
            raise ValueError("bad AES-ECB trailer")
        plain = bytes(self._block_decrypt(data[:-_BLOCK]))
        return plain[: len(plain) - (_BLOCK - rem)] if rem else plain
