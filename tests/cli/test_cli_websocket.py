"""The client commands over OpenD's WebSocket gateway: ``--transport websocket``,
``--websocket-key``, ``--ssl``/``--cafile`` and ``--connect-timeout``, as subprocesses over real
sockets against ``aiofutu sim --websocket-port`` (and in-thread simulators for TLS).

What the gateway serves is compared with what the same command prints over TCP from the same
simulator; a wrong or missing key, or TLS that does not verify, is one line and exit status 1;
a flag that does not fit the transport is one line and exit status 2, before connecting.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiofutu import Quote, Ticker
from aiofutu.cli import _main, build_parser
from aiofutu.testing import BackgroundSimulator, background_simulator

HK = "HK.00700"
US = "US.AAPL"
KEY = "7522027ccf5a06b1"
BURST = 20
ENV = {k: v for k, v in os.environ.items() if not k.startswith("AIOFUTU_")}


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "aiofutu", *args],
        capture_output=True,
        text=True,
        timeout=20,
        env=env or ENV,
    )


def one_line_error(result: Any, status: int, prefix: str) -> str:
    assert result.returncode == status, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(prefix), lines[0]
    return str(lines[0])


def ticks(result: Any) -> list[Ticker]:
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return [Ticker.model_validate_json(line) for line in result.stdout.splitlines()]


class Sim:
    """``aiofutu sim`` as a subprocess: its TCP port and its WebSocket gateway's."""

    def __init__(self, proc: subprocess.Popen[str], port: int, ws_port: int) -> None:
        self.proc, self.port, self.ws_port = proc, port, ws_port

    def tcp(self) -> list[str]:
        return ["--port", str(self.port)]

    def ws(self, *key: str) -> list[str]:
        return ["--port", str(self.ws_port), "--transport", "websocket", *key]


@pytest.fixture(scope="module")
def keyed() -> Iterator[Sim]:
    """``aiofutu sim --websocket-port 0 --websocket-key KEY``: no live flow, a burst per push."""
    args = ["sim", "--port", "0", "--websocket-port", "0", "--websocket-key", KEY]
    args += ["--rate", "0", "--burst", str(BURST)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiofutu", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert proc.stderr is not None
        ports: dict[str, int] = {}
        deadline = time.monotonic() + 15
        while len(ports) < 2 and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            if m := re.search(r"listening on 127\.0\.0\.1:(\d+)", line):
                ports["tcp"] = int(m.group(1))
            if m := re.search(r"WebSocket gateway on ws://127\.0\.0\.1:(\d+)", line):
                ports["ws"] = int(m.group(1))
        assert len(ports) == 2, ports
        yield Sim(proc, ports["tcp"], ports["ws"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.fixture(scope="module")
def open_gateway() -> Iterator[BackgroundSimulator]:
    """A simulator whose gateway takes any key (none configured)."""
    with background_simulator(tick_rate=0, burst=BURST, websocket_port=0) as sim:
        yield sim


# ---- a key ------------------------------------------------------------------------------------


def test_ticker_over_the_gateway_is_the_tcp_ticker(keyed: Sim) -> None:
    over_ws = ticks(
        run("ticker", HK, "--num", "7", "--format", "json", *keyed.ws("--websocket-key", KEY))
    )
    over_tcp = ticks(run("ticker", HK, "--num", "7", "--format", "json", *keyed.tcp()))
    assert len(over_ws) == 7 and over_ws == over_tcp
    sequences = [t.sequence for t in over_ws]
    assert sequences == sorted(set(sequences)) and all(s > 2**53 for s in sequences)


def test_tail_over_the_gateway_with_the_key_from_the_environment(keyed: Sim) -> None:
    env = {**ENV, "AIOFUTU_TRANSPORT": "websocket", "AIOFUTU_WEBSOCKET_KEY": KEY}
    args = ["tail", US, "--limit", "4", "--format", "json", "--port", str(keyed.ws_port)]
    got = ticks(run(*args, env=env))
    assert len(got) == 4 and {t.code for t in got} == {US}
    tape = ticks(run("ticker", US, "--num", "100", "--format", "json", *keyed.tcp()))
    start = tape.index(got[0])  # the first push (the latest tick), then the burst in order
    assert tape[start : start + 4] == got


@pytest.mark.parametrize("key", ["not-the-key", None], ids=["wrong-key", "no-key"])
def test_a_refused_key_is_one_line(keyed: Sim, key: str | None) -> None:
    given = [] if key is None else ["--websocket-key", key]
    result = run("ticker", HK, *keyed.ws(*given), "--connect-timeout", "0.5")
    line = one_line_error(result, 1, "aiofutu ticker: error: OpenD's WebSocket gateway at ")
    assert "did not answer Init within 0.5s" in line
    if key is None:
        assert line.endswith("pass --websocket-key")
    else:
        assert "wrong websocket key" in line and KEY not in line and key not in line
    assert result.stdout == ""


# ---- no key ------------------------------------------------------------------------------------


def test_quote_and_tail_without_a_key(open_gateway: BackgroundSimulator) -> None:
    ws = ["--port", str(open_gateway.websocket_port), "--transport", "websocket"]
    result = run("quote", HK, US, "--format", "json", *ws)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    quotes = [Quote.model_validate_json(line) for line in result.stdout.splitlines()]
    tcp = run("quote", HK, US, "--format", "json", "--port", str(open_gateway.port))
    assert [q.code for q in quotes] == [HK, US] and result.stdout == tcp.stdout
    got = ticks(run("tail", HK, "--limit", "3", "--format", "json", *ws))
    tape = open_gateway.call(
        lambda: [t.sequence for t in open_gateway.server.market.security(HK).recent()]
    )
    assert [t.sequence for t in got] == tape[tape.index(got[0].sequence) :][:3]
    assert open_gateway.call(lambda: open_gateway.server.handshakes["websocket"]) == 2


# ---- flags that do not fit the transport --------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--websocket-key", "k"], "--websocket-key applies to --transport websocket only"),
        (["--ssl"], "--ssl applies to --transport websocket only"),
        (["--cafile", "ca.pem"], "--cafile applies to --transport websocket only"),
        (["--transport", "websocket", "--rsa-key", "k.pem"], "--rsa-key does not apply to"),
        (["--transport", "websocket", "--cafile", "missing.pem"], "--cafile missing.pem: "),
    ],
)
@pytest.mark.parametrize("command", ["ticker", "tail", "quote", "snapshot", "kline", "book"])
def test_flags_that_do_not_fit_are_refused_before_connecting(
    command: str, argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("AIOFUTU_RSA_KEY", "AIOFUTU_TRANSPORT", "AIOFUTU_WEBSOCKET_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(_main.UsageError, match=re.escape(message)):
        _main._check(build_parser().parse_args([command, HK, *argv]))


def test_every_client_command_takes_the_transport_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    needs = {"record": ["--out", "x.jsonl"], "bridge": ["--nats", "nats://x:1", "--codes", HK]}
    for command in ("tail", "ticker", "record", "kline", "quote", "book", "snapshot", "bridge"):
        codes = [] if command == "bridge" else [HK]
        argv = [command, *codes, *needs.get(command, []), "--transport", "websocket"]
        args = build_parser().parse_args([*argv, "--websocket-key", "k", "--ssl"])
        _main._check(args)
        assert (args.transport, args.websocket_key, args.tls) == ("websocket", "k", True)
        assert args.connect_timeout == 10.0
    for argv in (["sim"], ["demo"], ["keygen", "k.pem"]):  # servers, or no connection at all
        with pytest.raises(SystemExit):
            build_parser().parse_args([*argv, "--transport", "tcp"])


def test_a_bad_transport_is_one_line() -> None:
    result = run("ticker", HK, "--websocket-key", "k")
    one_line_error(result, 2, "aiofutu ticker: error: --websocket-key applies to --transport")
    bad = run("quote", HK, env={**ENV, "AIOFUTU_TRANSPORT": "udp"})
    one_line_error(bad, 2, "aiofutu quote: error: AIOFUTU_TRANSPORT must be tcp or websocket")


# ---- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aiofutu cli test gateway")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_wss_with_cafile_and_an_unverified_certificate(certificate: tuple[Path, Path]) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    with background_simulator(tick_rate=0, websocket_port=0, websocket_ssl=context) as sim:
        ws = ["--port", str(sim.websocket_port), "--transport", "websocket"]
        secure = run(
            "ticker", HK, "--num", "3", "--format", "json", *ws, "--cafile", str(certificate[0])
        )
        plain = run("ticker", HK, "--num", "3", "--format", "json", "--port", str(sim.port))
        assert len(ticks(secure)) == 3 and secure.stdout == plain.stdout
        unverified = run("ticker", HK, *ws, "--ssl", "--connect-timeout", "2")
        line = one_line_error(unverified, 1, "aiofutu ticker: error: ")
        assert "certificate" in line.lower()
        no_tls = run("ticker", HK, *ws, "--connect-timeout", "1")  # ws:// to a wss:// gateway
        one_line_error(no_tls, 1, "aiofutu ticker: error: ")
