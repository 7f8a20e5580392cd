"""The npm ``futu-api`` SDK for the tests of this folder: ``npm ci`` once per session."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parent


def _lock_versions() -> dict[str, str]:
    """Versions of the direct dependencies, as package-lock.json pins them."""
    lock = json.loads((JS / "package-lock.json").read_text())
    deps = json.loads((JS / "package.json").read_text())["dependencies"]
    return {name: lock["packages"][f"node_modules/{name}"]["version"] for name in deps}


def _installed(expected: dict[str, str]) -> bool:
    for name, version in expected.items():
        manifest = JS / "node_modules" / name / "package.json"
        if not manifest.is_file() or json.loads(manifest.read_text())["version"] != version:
            return False
    return True


@pytest.fixture(scope="session")
def node() -> str:
    """The ``node`` executable, once tests/js/node_modules holds the locked packages."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run the npm futu-api SDK (CI has Node 20)")
    expected = _lock_versions()
    assert expected["futu-api"] == "10.11.7108"
    with _install_lock():  # xdist workers: one installs, the others then find it installed
        if not _installed(expected):
            proc = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=JS,
                capture_output=True,
                text=True,
                timeout=180,
            )
            if proc.returncode != 0 or not _installed(expected):
                pytest.fail(f"npm ci failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return node


@contextmanager
def _install_lock() -> Iterator[None]:
    """An exclusive lock on tests/js/.npm-install.lock (a no-op where fcntl does not exist)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: one worker at a time is the user's call
        yield
        return
    with open(JS / ".npm-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
