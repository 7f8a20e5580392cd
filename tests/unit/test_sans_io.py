"""The sans-IO claim, made executable: the protocol core imports no event loop library.

How: a fresh interpreter (so nothing this pytest process imported can leak in) registers a stub
``aiofutu`` package, a bare module whose ``__path__`` points at the real package folder, and then
imports the core submodules through the normal import system. The package's ``__init__`` never
runs, so this test keeps working once ``aiofutu/__init__.py`` re-exports the client (which is
allowed to pull in anyio): it measures only what the core modules themselves import, including
everything they import transitively (pydantic, protobuf, ...). ``aiofutu._protocol`` is checked
too when it exists; ``importlib.util.find_spec`` resolves it against the stub's ``__path__``, so
that lookup also runs no package code.

A control run imports ``asyncio`` on purpose and must be reported, so the probe cannot pass
vacuously.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "aiofutu"
FORBIDDEN = ("asyncio", "anyio", "trio")
CORE = [
    "aiofutu._codec",
    "aiofutu.codes",
    "aiofutu.enums",
    "aiofutu.errors",
    "aiofutu.models",
    "aiofutu.frames",
    "aiofutu._pb.qot_get_ticker_pb2",
    "aiofutu._pb.qot_update_ticker_pb2",
    "aiofutu._pb.qot_sub_pb2",
    "aiofutu._pb.init_connect_pb2",
    "aiofutu._pb.keep_alive_pb2",
]

PROBE = """
import importlib, importlib.util, json, sys, types

package_dir, forbidden = sys.argv[1], sys.argv[2].split(",")
modules, extra = sys.argv[3:-1], sys.argv[-1]
stub = types.ModuleType("aiofutu")
stub.__path__ = [package_dir]
stub.__package__ = "aiofutu"
sys.modules["aiofutu"] = stub

preloaded = [m for m in forbidden if m in sys.modules]
if importlib.util.find_spec("aiofutu._protocol") is not None:
    modules.append("aiofutu._protocol")
for name in modules:
    importlib.import_module(name)
if extra:
    importlib.import_module(extra)
print(json.dumps({
    "preloaded": preloaded,
    "imported": modules,
    "files": {m: sys.modules[m].__file__ for m in modules},
    "stub_intact": sys.modules["aiofutu"] is stub,
    "leaked": [m for m in forbidden if m in sys.modules],
}))
"""


def probe(extra: str = "") -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-I", "-c", PROBE, str(PACKAGE_DIR), ",".join(FORBIDDEN), *CORE, extra],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_core_modules_import_no_event_loop_library() -> None:
    result = probe()
    assert result["preloaded"] == []  # the interpreter itself starts clean
    assert result["stub_intact"]  # the package __init__ never ran
    assert set(CORE) <= set(result["imported"])
    for name, file in result["files"].items():
        assert Path(file).resolve().is_relative_to(PACKAGE_DIR), (name, file)
    assert result["leaked"] == [], f"sans-IO modules imported {result['leaked']}"


def test_protocol_module_is_checked_when_present() -> None:
    result = probe()
    has_protocol = (PACKAGE_DIR / "_protocol.py").exists()
    assert ("aiofutu._protocol" in result["imported"]) == has_protocol


def test_probe_detects_a_leak() -> None:
    result = probe(extra="asyncio")
    assert result["leaked"] == ["asyncio"]
