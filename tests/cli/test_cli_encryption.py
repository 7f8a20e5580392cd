"""``aiofutu keygen``, ``aiofutu sim --rsa-key`` and the client commands' ``--rsa-key``, as
subprocesses. Every mistake ends with one line on stderr, never a traceback."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiofutu.cli import main
from aiofutu.testing import BackgroundSimulator, background_simulator

pytest.importorskip("cryptography", reason="the crypto extra (a dev dependency)")

from cryptography.hazmat.primitives import serialization

HK = "HK.00700"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("AIOFUTU_")}


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 20) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "aiofutu", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or ENV,
    )


def one_line_error(result: Any, status: int, prefix: str) -> str:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(prefix), lines[0]
    return str(lines[0])


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "opend_key.pem"
    result = run("keygen", str(path))
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def encrypted(key: Path) -> Iterator[BackgroundSimulator]:
    with background_simulator(tick_rate=0, burst=30, seed=4, rsa_key=key) as sim:
        yield sim


# ---- keygen ----------------------------------------------------------------------------------


def test_keygen_writes_a_private_pkcs1_key_and_says_where_it_goes(key: Path) -> None:
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    data = key.read_bytes()
    assert data.startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")  # PKCS#1, as OpenD reads
    private = serialization.load_pem_private_key(data, password=None)
    assert private.key_size == 1024  # type: ignore[union-attr]
    again = run("keygen", str(key.with_name("second.pem")))
    assert again.returncode == 0 and again.stderr == ""
    out = again.stdout
    path = str(key.with_name("second.pem"))
    assert f"<rsa_private_key>{path}</rsa_private_key>" in out  # OpenD's setting
    assert f'rsa_private_key="{path}"' in out  # aiofutu.connect(...)
    assert f"--rsa-key {path}" in out
    assert f'SysConfig.set_init_rsa_file("{path}")' in out  # the official SDK
    assert "SysConfig.enable_proto_encrypt(True)" in out
    assert "1024-bit" in out


def test_keygen_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("precious")
    path.chmod(0o644)
    line = one_line_error(run("keygen", str(path)), 2, "aiofutu keygen: error: ")
    assert "already exists; use --force" in line
    assert path.read_text() == "precious"
    result = run("keygen", str(path), "--force", "--bits", "2048")
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert private.key_size == 2048  # type: ignore[union-attr]
    # a larger key: the SDK cannot use it, and the command says so (a warning, not an error)
    warning = result.stderr.splitlines()
    assert len(warning) == 1 and warning[0].startswith("aiofutu keygen: warning: ")
    assert "only works with 1024-bit keys" in warning[0]
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_keygen_bad_command_lines(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "key.pem"
    one_line_error(run("keygen", str(missing)), 2, "aiofutu keygen: error: cannot write")
    one_line_error(run("keygen", str(tmp_path)), 2, "aiofutu keygen: error: ")
    line = one_line_error(run("keygen", str(tmp_path / "k.pem"), "--bits", "1000"), 2, "aiofutu")
    assert "invalid choice" in line
    assert not (tmp_path / "k.pem").exists()


# ---- sim --rsa-key ---------------------------------------------------------------------------


def _serve(*args: str) -> tuple[subprocess.Popen[str], int, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiofutu", "sim", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.match(r"aiofutu sim: listening on 127\.0\.0\.1:(\d+)", line)
    assert match, line + proc.stderr.read()
    return proc, int(match.group(1)), line


def test_sim_command_requires_encryption(key: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    assert run("keygen", str(other)).returncode == 0
    proc, port, line = _serve("--rate", "0", "--rsa-key", str(key), "--aes-mode", "ecb")
    with proc:
        try:
            assert f"rsa_key={key}, aes_mode=ecb" in line
            ok = run("ticker", HK, "--num", "5", "--format", "json", "--port", str(port),
                     "--rsa-key", str(key))  # fmt: skip
            assert ok.returncode == 0, ok.stderr
            assert len(ok.stdout.splitlines()) == 5
            # the key from the environment, as for the other connection settings
            tail = run("tail", HK, "--limit", "1", "--format", "json", "--port", str(port),
                       env={**ENV, "AIOFUTU_RSA_KEY": str(key)})  # fmt: skip
            assert tail.returncode == 0, tail.stderr
            plain = run("ticker", HK, "--port", str(port))
            text = one_line_error(plain, 1, "aiofutu ticker: error: InitConnect to OpenD")
            assert "requires encryption" in text and "rsa_private_key" in text
            wrong = run("ticker", HK, "--port", str(port), "--rsa-key", str(other))
            text = one_line_error(wrong, 1, "aiofutu ticker: error: InitConnect to OpenD")
            assert "RSA key" in text
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=10)
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert err.count("refused InitConnect") == 2  # the simulator says why, once per refusal


def test_sim_and_client_bad_key_options(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key\n")
    line = one_line_error(run("sim", "--rsa-key", str(bad)), 2, "aiofutu sim: error: ")
    assert "cannot read an RSA private key" in line
    line = one_line_error(run("sim", "--rsa-key", str(tmp_path / "no.pem")), 2, "aiofutu sim:")
    assert "cannot read RSA key file" in line
    line = one_line_error(run("sim", "--aes-mode", "cbc"), 2, "aiofutu sim: error: ")
    assert "needs rsa_key" in line
    line = one_line_error(run("ticker", HK, "--rsa-key", str(bad)), 2, "aiofutu ticker: error:")
    assert "cannot read an RSA private key" in line


# ---- record over an encrypted connection (written with Recorder.awrite) -----------------------


def test_record_with_rsa_key(encrypted: BackgroundSimulator, key: Path, tmp_path: Path) -> None:
    out = tmp_path / "ticks.parquet"
    result = run(
        "record", HK, "--out", str(out), "--limit", "30", "--port", str(encrypted.port),
        "--rsa-key", str(key),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"aiofutu record: wrote 30 ticks to {out}\n"
    import polars as pl

    sent = [t.sequence for t in encrypted.call(encrypted.server.market.history, HK)[-30:]]
    assert pl.read_parquet(out)["sequence"].to_list() == sent
    assert encrypted.call(lambda: dict(encrypted.server.handshakes)) == {"aes-cbc": 1}


@pytest.mark.parametrize("command", ["tail", "ticker", "record", "sim", "keygen"])
def test_help_lists_the_encryption_options(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    if command == "keygen":
        assert "--bits" in out and "--force" in out
    else:
        assert "--rsa-key" in out
    if command == "sim":
        assert "--aes-mode" in out
