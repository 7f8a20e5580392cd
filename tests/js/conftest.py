"""The npm ``futu-api`` SDK for the tests of this folder: ``npm ci`` once per session."""

from __future__ import annotations

import json
import shutil
import subprocess
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
