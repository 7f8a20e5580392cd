"""Every Python example in ``README.md`` and ``docs/*.md`` runs, and the names they use exist.

Every fenced ```` ```python ```` block is run for real, each in its own temporary directory and
subprocess, with a timeout (``JOB_TIMEOUT``). What a block is decides how it runs:

a script (the default)
    run as ``python main.py``; it must exit 0. A module-wide simulator (HK.00700 and US.AAPL,
    1000 ticks of history each, 50 live ticks a second) stands in for OpenD: every ``11111`` (the
    port OpenD listens on by default) in the source becomes the simulator's port, so an example
    is written exactly as a user would write it for a local OpenD. A script may also start its
    own simulator (``sim.serve(port=0)``).
a file: its first line is a comment naming it, ``# conftest.py`` (any name not ``test_*``)
    written into the sandbox of every test module after it on the same page (a later file of the
    same name replaces it), and not run by itself.
a test module: its first line is ``# test_NAME.py``, or it defines ``test_*`` functions
    run with pytest (``python -m pytest -v``) in a sandbox with the page's files so far; all its
    tests must pass, and every async test must have run on asyncio *and* on trio. When the
    page's ``conftest.py`` does not parametrise ``anyio_backend`` itself (as
    ``docs/testing.md`` shows how to), the harness does it for the run.
a fragment: the fence says ```` ```python fragment ````
    only compiled (top-level ``await`` allowed), never run. Use it only for an excerpt that
    cannot stand alone (one that needs the reader's own OpenD key, say).

Hidden markers on the line before a fence still work, for pages written that way:
``<!-- test -->`` (a script that must also ``assert`` something), ``<!-- test: file NAME -->``,
``<!-- test: pytest NAME -->`` and ``<!-- test: shell -->`` (a ``bash`` block: one command per
line, run with ``AIOFUTU_HOST``/``AIOFUTU_PORT`` pointing at the simulator; each must exit 0 and
print something).

Besides running them: every ``aiofutu.NAME``, ``client.METHOD(...)`` and ``server.METHOD(...)``
mentioned must exist, every ``aiofutu COMMAND`` line in a ``bash`` block must parse, and every
``pip install`` line must name extras that ``pyproject.toml`` defines and must not install
``aiofutu`` from PyPI, where it is not published yet. The jobs run concurrently (a module
fixture), each reported as its own test.
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

#: one xdist worker runs every example (the ``results`` fixture runs them all, once)
pytestmark = pytest.mark.xdist_group("docs")

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - pytest itself depends on tomli there
    import tomli as tomllib

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
MARKER = re.compile(r"<!--\s*test(?::\s*(?P<kind>file|pytest|shell)(?:\s+(?P<arg>\S+))?)?\s*-->")
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)(?P<info>[^`]*)$")
FILE_NAME = re.compile(r"#\s*(?P<name>[\w-]+\.py)\s*")
JOB_TIMEOUT = 45.0
BACKENDS = ("asyncio", "trio")

# Given to pytest with ``-p`` when the page's own conftest.py does not choose the backends. A
# parametrize mark (added before pytest reads the marks) wins over the anyio_backend fixture,
# whichever backends that fixture has by default in the installed anyio.
BACKENDS_PLUGIN = f'''"""Run every anyio test of a docs example on {" and ".join(BACKENDS)}."""

import pytest


def _names(mark):
    names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
    return [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc):
    if "anyio_backend" not in metafunc.fixturenames:
        return
    if any("anyio_backend" in _names(m) for m in metafunc.definition.iter_markers("parametrize")):
        return  # the test chose its backend itself
    mark = pytest.mark.parametrize("anyio_backend", {list(BACKENDS)!r}, scope="module")
    metafunc.definition.add_marker(mark)
'''


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    kind: str | None  # "script", "file", "pytest", "shell", "fragment"; None: not run
    arg: str | None  # the file name of a "file" or "pytest" block
    marked: bool = False  # by a hidden <!-- test --> comment

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def _defines_tests(code: str) -> bool:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False  # test_python_blocks_compile reports it
    return any(
        (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"))
        or (isinstance(node, ast.ClassDef) and node.name.startswith("Test"))
        for node in tree.body
    )


Kind = tuple[str | None, str | None]


def _classify(page: str, line: int, lang: str, info: str, code: str) -> Kind:
    """What an unmarked block is, from its fence and its content (see the module docstring)."""
    if lang != "python":
        return None, None
    if "fragment" in info.split():
        return "fragment", None
    first = code.lstrip("\n").split("\n", 1)[0]
    named = FILE_NAME.fullmatch(first)
    if named is not None:
        name = named["name"]
        return ("pytest" if name.startswith("test_") else "file"), name
    if _defines_tests(code):
        stem = re.sub(r"\W", "_", Path(page).stem.lower())
        return "pytest", f"test_{stem}_{line}.py"
    return "script", None


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
        code = "\n".join(body) + "\n"
        lang = fence["lang"]
        if marker is not None:
            kind, arg = marker["kind"] or "script", marker["arg"]
        else:
            kind, arg = _classify(page.name, start + 1, lang, fence["info"], code)
        blocks.append(Block(page.name, start + 1, lang, code, kind, arg, marker is not None))
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
    backends: bool = False  # a test module whose async tests must run on every backend


def _pytest_job(block: Block, files: dict[str, str]) -> Job:
    name = block.arg or "test_doc.py"
    argv = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", name]
    written = {**files, name: block.code}
    if not any(re.search(r"\bdef anyio_backend\b", text) for text in written.values()):
        written["_docs_backends.py"] = BACKENDS_PLUGIN
        argv[3:3] = ["-p", "_docs_backends"]
    is_async = re.search(r"^\s*async def test", block.code, re.MULTILINE) is not None
    return Job(block.where, tuple(argv), files=tuple(written.items()), backends=is_async)


def _jobs() -> list[Job]:
    jobs: list[Job] = []
    for page in PAGES:
        files: dict[str, str] = {}  # the page's files so far, in reading order
        for b in (b for b in BLOCKS if b.page == page.name):
            if b.kind == "file":
                files[b.arg or "conftest.py"] = b.code
            elif b.kind == "script":
                jobs.append(Job(b.where, (sys.executable, "main.py"), script=b.code))
            elif b.kind == "pytest":
                jobs.append(_pytest_job(b, files))
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
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
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
    # the jobs mostly wait on the simulator's ticks: twice the cores keeps both of them busy
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1) + 1) as pool:
        futures = {
            job.id: pool.submit(_run, job, opend_port, root / re.sub(r"\W", "_", job.id))
            for job in JOBS
        }
        return {key: future.result() for key, future in futures.items()}


def _check(job: Job, done: subprocess.CompletedProcess[str]) -> None:
    report = f"{' '.join(job.argv)}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0, report
    if job.argv[1:3] == ("-m", "pytest"):
        assert re.search(r"\d+ passed", done.stdout), report
        assert not re.search(r"\d+ (failed|skipped|xfailed|error)", done.stdout), report
        if job.backends:
            for backend in BACKENDS:
                ran = re.search(rf"\[[^\]]*\b{backend}\b[^\]]*\] PASSED", done.stdout)
                assert ran, f"no test ran on {backend}\n{report}"
    elif job.script is None:  # a shell command
        assert (done.stdout + done.stderr).strip(), f"printed nothing\n{report}"


# The first of these runs every job (the ``results`` fixture, a few workers): its time grows with
# the number of examples, so the suite's per-test timeout would fail it on a loaded machine.
@pytest.mark.timeout(max(60.0, 4 * len(JOBS)))  # the first case's setup runs every job
@pytest.mark.parametrize("job", JOBS, ids=[job.id for job in JOBS])
def test_doc_example_runs(job: Job, results: dict[str, subprocess.CompletedProcess[str]]) -> None:
    _check(job, results[job.id])


def test_a_test_module_must_run_on_every_backend() -> None:
    job = Job("x.md:1", (sys.executable, "-m", "pytest", "t.py"), backends=True)
    both = "t.py::test_a[asyncio] PASSED\nt.py::test_a[trio] PASSED\n1 passed in 0.1s"
    _check(job, subprocess.CompletedProcess(job.argv, 0, both, ""))
    only_asyncio = "t.py::test_a[asyncio] PASSED\n1 passed in 0.1s"
    with pytest.raises(AssertionError, match="no test ran on trio"):
        _check(job, subprocess.CompletedProcess(job.argv, 0, only_asyncio, ""))
    with pytest.raises(AssertionError):
        _check(job, subprocess.CompletedProcess(job.argv, 0, both + "\n1 skipped", ""))


def test_docs_have_tested_examples() -> None:
    kinds = {b.kind for b in BLOCKS}
    assert {"script", "file", "pytest", "shell"} <= kinds
    for name in ("index.md", "tickers.md", "streaming.md", "reconnect.md", "errors.md"):
        assert any(b.page == name and b.kind == "script" for b in BLOCKS), f"{name}: none tested"
    readme = [b for b in BLOCKS if b.page == "README.md" and b.lang == "python"]
    assert {b.kind for b in readme} >= {"script", "file", "pytest"}


def test_every_python_block_runs() -> None:
    """Only a block marked ``fragment`` escapes running, and those stay rare."""
    python = [b for b in BLOCKS if b.lang == "python"]
    assert all(b.kind in {"script", "file", "pytest", "fragment"} for b in python)
    fragments = [b.where for b in python if b.kind == "fragment"]
    assert len(fragments) <= max(2, len(python) // 10), fragments


def test_the_classification() -> None:
    assert _classify("x.md", 1, "python", "", "import anyio\nanyio.run(main)\n") == (
        "script",
        None,
    )
    assert _classify("x.md", 1, "python", "", "# conftest.py\nimport pytest\n") == (
        "file",
        "conftest.py",
    )
    assert _classify("x.md", 1, "python", "", "# test_bot.py\nx = 1\n") == ("pytest", "test_bot.py")
    assert _classify("docs/a-b.md", 7, "python", "", "async def test_x():\n    pass\n") == (
        "pytest",
        "test_a_b_7.py",
    )
    assert _classify("x.md", 1, "python", " fragment", "await x\n") == ("fragment", None)
    assert _classify("x.md", 1, "bash", "", "ls\n") == (None, None)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.kind == "script"], ids=lambda b: b.where)
def test_marked_examples_assert_something(block: Block) -> None:
    assert block.lang == "python"
    if block.marked:
        asserts = re.search(r"^\s*assert\b", block.code, re.MULTILINE)
        assert asserts, f"{block.where} asserts nothing"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "python"], ids=lambda b: b.where)
def test_python_blocks_compile(block: Block) -> None:
    compile(block.code, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_every_page_is_linked_from_the_index() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\((\w+\.md)\)", index))
    assert {p.name for p in DOCS.glob("*.md")} - {"index.md"} <= linked


def _extras() -> set[str]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return set(tomllib.load(f)["project"]["optional-dependencies"])


def _pip_targets(line: str) -> list[str]:
    """The requirements of each ``pip install ...`` on a line (in a code block or a code span)."""
    targets: list[str] = []
    for m in re.finditer(r"pip install ([^`#;&|\n]*)", line):
        try:
            words = shlex.split(m[1])
        except ValueError:
            words = m[1].split()
        words = [w for w in words if not w.startswith("-")]
        while "@" in words:  # an unquoted "name @ url": one requirement
            at = words.index("@")
            words[at - 1 : at + 2] = [" ".join(words[at - 1 : at + 2])]
        targets.extend(words)
    return targets


REQUIREMENT = re.compile(r"(?P<name>[\w.\-/]+)(?:\[(?P<extras>[^\]]*)\])?(?P<url>\s*@.*)?")


def _pip_problems(line: str, extras: set[str]) -> list[str]:
    problems = []
    for target in _pip_targets(line):
        req = REQUIREMENT.fullmatch(target)
        if req is None:
            continue
        name = req["name"]
        is_ours = name.lower() == "aiofutu" or name.startswith((".", "/"))
        if not is_ours:
            continue  # another package (fastapi, trio, ...)
        unknown = {e.strip() for e in (req["extras"] or "").split(",") if e.strip()} - extras
        if unknown:
            problems.append(f"{target!r}: no extra {sorted(unknown)} in pyproject.toml")
        if name.lower() == "aiofutu" and not req["url"]:
            problems.append(f"{target!r}: aiofutu is not on PyPI; install from a clone or git")
    return problems


def test_pip_install_lines_are_true() -> None:
    """An install line a reader copies must work: known extras, and no PyPI aiofutu (yet)."""
    extras = _extras()
    assert {"polars", "crypto", "dev"} <= extras
    problems = []
    seen = 0
    for page in PAGES:
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if "pip install" in line:
                seen += 1
                problems += [f"{page.name}:{n}: {p}" for p in _pip_problems(line, extras)]
    assert seen >= 3
    assert not problems, problems


def test_the_pip_check_can_fail() -> None:
    extras = {"polars", "crypto", "dev"}
    assert _pip_problems("pip install aiofutu  # the client", extras)
    assert _pip_problems('pip install "aiofutu[polars]"', extras)
    assert _pip_problems("`pip install -e '.[polar]'`", extras)
    assert _pip_problems('pip install "aiofutu[nats] @ git+https://x/y.git"', extras)
    assert not _pip_problems("pip install -e '.[polars,crypto]'   # + polars", extras)
    assert not _pip_problems('pip install "aiofutu[polars] @ git+<repo-url>"', extras)
    assert not _pip_problems("pip install aiofutu @ git+https://x/y.git", extras)
    assert not _pip_problems("pip install fastapi uvicorn", extras)


def _simulator_has(name: str) -> bool:
    cls = sim.Simulator
    if hasattr(cls, name):
        return True
    source = "".join(p.read_text() for p in Path(sim.__file__).parent.glob("*.py"))
    return re.search(rf"\bself\.{name}\b\s*(:[^=]+)?=", source) is not None


def test_names_used_in_docs_exist() -> None:
    """``aiofutu.X`` anywhere in the docs; ``client.m``, ``server.m``/``opend.m`` and ``ticks.m``
    in their Python blocks (outside string literals)."""
    import aiofutu.bridge
    import aiofutu.bus
    import aiofutu.record
    import aiofutu.testing

    modules = {"sim": aiofutu.sim, "testing": aiofutu.testing, "record": aiofutu.record}
    modules |= {"bridge": aiofutu.bridge, "bus": aiofutu.bus}
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
        code += "\n".join(re.findall(r"`([^`\n]+)`", text))  # and the prose's code spans
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
