"""The examples in ``docs/`` run, and the names they use exist.

A fenced block is tested when the line before it is a marker comment:

``<!-- test -->`` (a ``python`` block)
    a complete program, run in a subprocess against a simulator (every ``11111`` in it becomes the
    simulator's port); it must exit 0 and assert something.
``<!-- test: file NAME -->``
    a file (``conftest.py``, ...) written into the page's sandbox directory.
``<!-- test: pytest NAME -->`` (a ``python`` block)
    a test module written into the sandbox, run with pytest there; all its tests must pass.
``<!-- test: shell -->`` (a ``bash`` block)
    one command per line, run with ``AIOFUTU_HOST``/``AIOFUTU_PORT`` pointing at the simulator;
    each must exit 0 and print something (on stdout or stderr).

Untested ``python`` blocks must still compile (top-level ``await`` allowed), and every
``aiofutu.NAME``, ``client.METHOD(...)`` and ``server.METHOD(...)`` they mention must exist.
The jobs run concurrently (a module fixture), each reported as its own test.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from aiofutu import sim
from aiofutu.testing import background_simulator

if TYPE_CHECKING:
    from collections.abc import Iterator

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(DOCS.glob("*.md"))
MARKER = re.compile(r"<!--\s*test(?::\s*(?P<kind>file|pytest|shell)(?:\s+(?P<arg>\S+))?)?\s*-->")
FENCE = re.compile(r"^```(?P<lang>\w*)\s*$")
JOB_TIMEOUT = 60.0


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    kind: str | None  # None: untested; "script", "file", "pytest", "shell"
    arg: str | None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def parse(page: Path) -> list[Block]:
    blocks: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    marker: re.Match[str] | None = None
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            if lines[i].strip():
                marker = MARKER.fullmatch(lines[i].strip())
            i += 1
            continue
        start = i
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        kind = None
        arg = None
        if marker is not None:
            kind = marker["kind"] or "script"
            arg = marker["arg"]
        blocks.append(Block(page.name, start + 1, fence["lang"], "\n".join(body) + "\n", kind, arg))
        marker = None
        i += 1
    return blocks


BLOCKS = [block for page in PAGES for block in parse(page)]


@dataclass(frozen=True)
class Job:
    id: str
    argv: tuple[str, ...]
    files: tuple[tuple[str, str], ...] = ()  # written into the job's directory first
    script: str | None = None  # python source, run as main.py (with the port substituted)


def _jobs() -> list[Job]:
    jobs: list[Job] = []
    for page in PAGES:
        blocks = [b for b in BLOCKS if b.page == page.name]
        files = tuple((b.arg or "", b.code) for b in blocks if b.kind == "file")
        for b in blocks:
            if b.kind == "script":
                jobs.append(Job(b.where, (sys.executable, "main.py"), script=b.code))
            elif b.kind == "pytest":
                name = b.arg or "test_doc.py"
                argv = (sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name)
                jobs.append(Job(b.where, argv, files=(*files, (name, b.code))))
            elif b.kind == "shell":
                for n, line in enumerate(b.code.splitlines()):
                    command = line.split(" #", 1)[0].strip()
                    if command and not command.startswith("#"):
                        jobs.append(Job(f"{b.where}+{n + 1}", tuple(shlex.split(command))))
    return jobs


JOBS = _jobs()


@pytest.fixture(scope="module")
def opend_port() -> Iterator[int]:
    """A simulator on its own thread, with 1000 ticks of history for each code."""
    codes = ("HK.00700", "US.AAPL")
    with background_simulator(tick_rate=50, codes=codes) as opend:
        for code in codes:
            opend.call(opend.server.burst, code, 1000)
        yield opend.port


def _run(job: Job, port: int, workdir: Path) -> subprocess.CompletedProcess[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    for name, text in job.files:
        (workdir / name).write_text(text, encoding="utf-8")
    if job.script is not None:
        (workdir / "main.py").write_text(job.script.replace("11111", str(port)), encoding="utf-8")
    env = {
        **os.environ,
        "AIOFUTU_HOST": "127.0.0.1",
        "AIOFUTU_PORT": str(port),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    try:
        return subprocess.run(
            job.argv,
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=JOB_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return subprocess.CompletedProcess(job.argv, -1, out, f"timed out after {JOB_TIMEOUT}s")


@pytest.fixture(scope="module")
def results(
    opend_port: int, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, subprocess.CompletedProcess[str]]:
    root = tmp_path_factory.mktemp("docs")
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {
            job.id: pool.submit(_run, job, opend_port, root / re.sub(r"\W", "_", job.id))
            for job in JOBS
        }
        return {key: future.result() for key, future in futures.items()}


@pytest.mark.parametrize("job", JOBS, ids=[job.id for job in JOBS])
def test_doc_example_runs(job: Job, results: dict[str, subprocess.CompletedProcess[str]]) -> None:
    done = results[job.id]
    report = f"{' '.join(job.argv)}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0, report
    assert (done.stdout + done.stderr).strip(), f"printed nothing\n{report}"
    if job.argv[1:3] == ("-m", "pytest"):
        assert re.search(r"\d+ passed", done.stdout) and "failed" not in done.stdout, report


def test_docs_have_tested_examples() -> None:
    kinds = {b.kind for b in BLOCKS}
    assert {"script", "file", "pytest", "shell"} <= kinds
    for name in ("index.md", "tickers.md", "streaming.md", "reconnect.md", "errors.md"):
        assert any(b.page == name and b.kind == "script" for b in BLOCKS), f"{name}: none tested"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.kind == "script"], ids=lambda b: b.where)
def test_tested_examples_assert_something(block: Block) -> None:
    assert block.lang == "python"
    assert re.search(r"^\s*assert\b", block.code, re.MULTILINE), f"{block.where} asserts nothing"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "python"], ids=lambda b: b.where)
def test_python_blocks_compile(block: Block) -> None:
    compile(block.code, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_every_page_is_linked_from_the_index() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\((\w+\.md)\)", index))
    assert {p.name for p in PAGES} - {"index.md"} <= linked


def _simulator_has(name: str) -> bool:
    cls = sim.Simulator
    if hasattr(cls, name):
        return True
    source = "".join(p.read_text() for p in Path(sim.__file__).parent.glob("*.py"))
    return re.search(rf"\bself\.{name}\b\s*(:[^=]+)?=", source) is not None


def test_names_used_in_docs_exist() -> None:
    """``aiofutu.X`` anywhere in the docs; ``client.m``, ``server.m``/``opend.m`` and ``ticks.m``
    in their Python blocks (outside string literals)."""
    import aiofutu.record
    import aiofutu.testing

    modules = {"sim": aiofutu.sim, "testing": aiofutu.testing, "record": aiofutu.record}
    internal = {"client", "streams", "models", "frames", "errors", "enums", "state", "codes", "cli"}
    stream_attrs = {"received", "dropped", "gaps", "codes"}
    missing = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in re.finditer(r"\baiofutu\.(\w+)(?:\.(\w+))?", text):
            head, tail = m[1], m[2]
            if head in modules:
                if tail and not hasattr(modules[head], tail):
                    missing.append(f"{page.name}: aiofutu.{head}.{tail}")
            elif head not in internal and not hasattr(aiofutu, head):
                missing.append(f"{page.name}: aiofutu.{head}")
        code = "".join(b.code for b in BLOCKS if b.page == page.name and b.lang == "python")
        for obj, name in re.findall(r"(?<![\w\"'/.-])(\w+)\.(\w+)", code):
            if obj == "client" and not hasattr(aiofutu.Client, name) and name != "reconnects":
                missing.append(f"{page.name}: client.{name}")
            elif obj in {"server", "opend"} and not _simulator_has(name):
                missing.append(f"{page.name}: Simulator.{name}")
            elif (
                obj in {"ticks", "latest", "stream"}
                and not hasattr(aiofutu.TickerStream, name)
                and name not in stream_attrs
            ):
                missing.append(f"{page.name}: TickerStream.{name}")
    assert not missing, missing


def test_cli_lines_in_docs_parse() -> None:
    """Every ``aiofutu COMMAND ...`` line in a bash block is a valid command line (optional parts
    in ``[...]`` are dropped)."""
    from aiofutu import cli

    build_parser = getattr(cli, "build_parser", None)
    if build_parser is None:
        pytest.skip("aiofutu.cli has no build_parser()")
    bad = []
    for block in BLOCKS:
        if block.lang != "bash":
            continue
        for line in block.code.splitlines():
            command = re.sub(r"\[[^\]]*\]", "", line.split(" #", 1)[0]).strip()
            if not command.startswith("aiofutu "):
                continue
            try:
                build_parser().parse_args(shlex.split(command)[1:])
            except SystemExit:
                bad.append(f"{block.where}: {line.strip()}")
    assert not bad, bad
