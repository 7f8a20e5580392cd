"""Run an SDK peer script in a fresh interpreter on our encoded bodies (shared by the SDK tests).

The SDK writes to ``$HOME`` and imports its world; a subprocess with a private home keeps that
out of the test process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest


def run_sdk_peer(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    script: str,
    bodies: dict[str, bytes],
    args: Any,
) -> dict[str, Any]:
    """Write ``bodies`` and ``args``, run ``script`` on them, and return its JSON output."""
    work = tmp_path_factory.mktemp(name)
    home = work / "home"
    home.mkdir()
    inputs = work / "in"
    inputs.mkdir()
    for key, data in bodies.items():
        (inputs / f"{key}.bin").write_bytes(data)
    (inputs / "args.json").write_text(json.dumps(args))
    path = work / "sdk_peer.py"
    path.write_text(script)
    out = work / "out.json"
    env = {**os.environ, "HOME": str(home), "USERPROFILE": str(home)}
    proc = subprocess.run(
        [sys.executable, str(path), str(out), str(inputs)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=work,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result: dict[str, Any] = json.loads(out.read_text())
    result["_bodies"] = bodies
    result["_args"] = args
    return result
