"""``python -m benchmarks``: aiofutu against the official SDK, same simulator, same run.

The runner itself measures nothing. It starts the simulator in its own process
(``benchmarks.sim_proc``), then runs every measurement in a fresh client process
(``benchmarks.client_aiofutu``, ``benchmarks.client_sdk``, ``benchmarks.client_floor``), so that
no client shares an interpreter, a GIL or a heap with another one or with the simulator. It
talks to them with ``@@bench {json}`` lines, prints one table and writes it as JSON.

Every child has a timeout and is killed (by its own process id) when it fails or overstays.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

from . import client_history, series
from ._common import PREFIX
from .series import SERIES_SECTIONS
from .state import state_rows, state_section

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "latest.json"
CODE = "HK.00700"
SECTIONS = (
    "push1",
    "push10",
    "push1aes",
    "push1ws",
    "slow",
    "rt",
    "connect",
    "import",
    "bridge",
    "snapshot",
    "state",
    *SERIES_SECTIONS,
    "history",
)
#: codes per get_market_snapshot call in the snapshot rows (OpenD's per-request limit)
SNAPSHOT_CODES = 400
#: (section, ticks per push, measurement, short name for the CPU/RSS rows, encrypted)
PUSH_SECTIONS = (
    ("push1", 1, "push 1 tick/msg", "push 1", False),
    ("push10", 10, "push 10 tick/msg", "push 10", False),
    ("push1aes", 1, "push 1 tick/msg, encrypted (AES-CBC)", "push 1 AES-CBC", True),
)


class BenchError(Exception):
    """A child failed, answered an error or overstayed its timeout."""


# -- child processes ------------------------------------------------------------------------


class Child:
    """A benchmark process: ``@@bench`` lines from its stdout, stderr to a log file."""

    live: ClassVar[set[Child]] = set()

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.port = 0  # the simulator's, once it reported it
        self.websocket_port = 0  # its WebSocket gateway's
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[str] = open(self.log_path, "w")  # closed in kill()
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=ROOT,
            env=env,
            start_new_session=True,  # a Ctrl-C in the terminal reaches only the runner
        )
        self._group_killed = False
        Child.live.add(self)
        threading.Thread(target=self._pump, name=f"pump-{name}", daemon=True).start()

    def _pump(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        for line in stdout:
            if line.startswith(PREFIX):
                try:
                    self._lines.put(json.loads(line[len(PREFIX) :]))
                except ValueError:
                    self._log.write(f"[runner] bad message line: {line}")
            else:
                self._log.write(f"[stdout] {line}")
        self._lines.put(None)

    def send(self, line: str) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write(line + "\n")
            stdin.flush()
        except OSError as exc:
            raise BenchError(f"{self.name}: cannot send {line!r}: {exc}") from None

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        """The next message, which must be ``event``; BenchError on error, exit or timeout."""
        try:
            msg = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise BenchError(f"{self.name}: no {event!r} within {timeout:.0f}s") from None
        if msg is None:
            self.proc.wait(5)
            raise BenchError(
                f"{self.name}: exited (status {self.proc.returncode}) before {event!r}"
                f"{self._tail()}"
            )
        if msg.get("event") == "error":
            raise BenchError(f"{self.name}: {msg.get('message')}{self._tail()}")
        if msg.get("event") != event:
            raise BenchError(f"{self.name}: expected {event!r}, got {msg}")
        return msg

    def _tail(self, lines: int = 15) -> str:
        self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return ("\n    | " + "\n    | ".join(text)) if text else ""

    def finish(self, timeout: float = 15.0) -> None:
        """Wait for a normal exit; kill it when it does not come."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self) -> None:
        """Kill the child and what it started (its own process group: a bridge benchmark's
        nats-server, simulator and bridge), even when the child itself is already gone."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        if hasattr(os, "killpg") and not self._group_killed:
            self._group_killed = True  # once: the group id may be reused after its last member
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # start_new_session: pgid == pid
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()
        with contextlib.suppress(OSError):
            self._log.close()
        Child.live.discard(self)


# -- configuration --------------------------------------------------------------------------


@dataclass
class Plan:
    n_push: int = 200_000
    n_slow: int = 200_000
    slow_buffer: int = 10_000
    repeat: int = 3
    sdk_repeat: int = 3
    rt_calls: int = 200
    rt_warmup: int = 10
    connects: int = 10
    imports: int = 10
    #: snapshot calls per client (OpenD allows 60 snapshot requests per 30 s; keep below it)
    snapshot_calls: int = 20
    snapshot_warmup: int = 2
    stream_buffer: int = 10_000
    stream_overflow: str = "block"
    frames_max_rows: int = 10_000
    frames_max_latency: float = 0.1
    frames_buffer: int = 1_000_000
    quick: bool = False
    sections: tuple[str, ...] = SECTIONS
    profile_dir: str = ""


def make_plan(args: argparse.Namespace) -> Plan:
    plan = Plan()
    if args.quick:
        plan = dataclasses.replace(
            plan,
            n_push=50_000,
            n_slow=50_000,
            repeat=1,
            sdk_repeat=1,
            rt_calls=50,
            rt_warmup=5,
            connects=3,
            imports=3,
            snapshot_calls=8,
            snapshot_warmup=1,
            quick=True,
        )
    if args.repeat is not None:
        plan.repeat = max(args.repeat, 1)
        plan.sdk_repeat = max(args.repeat, 1)
    if args.sdk_repeat is not None:
        plan.sdk_repeat = max(args.sdk_repeat, 1)
    if args.only:
        wanted = tuple(s.strip() for s in args.only.split(",") if s.strip())
        unknown = [s for s in wanted if s not in SECTIONS]
        if unknown:
            raise SystemExit(f"--only: unknown section(s) {unknown}; choose from {SECTIONS}")
        plan.sections = wanted
    plan.profile_dir = args.profile or ""
    return plan


# -- the run --------------------------------------------------------------------------------


@dataclass
class Bench:
    plan: Plan
    tmp: Path
    runs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sim: Child | None = None
    sim_starts: int = 0
    #: the simulator requires encryption (RSA key ``key_file``, AES-CBC)
    sim_encrypted: bool = False
    key_file: str = ""

    @property
    def logs(self) -> Path:
        path = self.tmp / "logs"
        path.mkdir(exist_ok=True)
        return path

    def env(self, *, sdk: bool = False) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.pop("PYTHONSTARTUP", None)
        if sdk:
            home = self.tmp / "sdk-home"
            home.mkdir(exist_ok=True)
            env["HOME"] = str(home)  # the SDK writes ~/.com.futunn.FutuOpenD/Log at import
        return env

    def start_sim(self, encrypted: bool | None = None) -> Child:
        """(Re)start the simulator; ``encrypted`` None keeps the current setting."""
        if encrypted is not None:
            self.sim_encrypted = encrypted
        if self.sim is not None:
            self.sim.kill()
        self.sim_starts += 1
        argv = [sys.executable, "-m", "benchmarks.sim_proc"]
        if self.sim_encrypted:
            argv += ["--rsa-key", self.rsa_key(), "--aes-mode", "cbc"]
        sim = Child(f"sim-{self.sim_starts}", argv, env=self.env(), log_dir=self.logs)
        self.sim = sim
        ready = sim.expect("ready", 30)
        sim.port = int(ready["port"])
        sim.websocket_port = int(ready.get("websocket_port") or 0)
        return sim

    def rsa_key(self) -> str:
        """OpenD's RSA key for the encrypted rows: 1024 bits, the only size the SDK takes."""
        if not self.key_file:
            path = self.tmp / "opend_key.pem"
            argv = [sys.executable, "-m", "aiofutu", "keygen", str(path), "--bits", "1024"]
            try:
                subprocess.run(
                    argv, env=self.env(), capture_output=True, text=True, check=True, timeout=60
                )
            except (OSError, subprocess.SubprocessError) as exc:
                raise BenchError(f"aiofutu keygen failed: {exc}") from None
            self.key_file = str(path)
        return self.key_file

    @property
    def port(self) -> int:
        assert self.sim is not None
        return self.sim.port

    def child(
        self, name: str, module: str, args: list[str], *, sdk: bool = False, port: int = 0
    ) -> Child:
        argv = [sys.executable, "-m", module, *args, "--port", str(port or self.port)]
        return Child(f"{len(self.runs):03d}-{name}", argv, env=self.env(sdk=sdk), log_dir=self.logs)

    # -- push ---------------------------------------------------------------------------

    def push_timeout(self, client: str, n: int, tpp: int) -> float:
        # generous floors: SDK ~4k ticks/s at 1 tick per push, aiofutu >100k
        slowest = {"sdk": 1_000.0 * min(tpp, 5), "floor": 20_000.0}.get(client, 10_000.0)
        return 60.0 + n / slowest

    def push_run(
        self, client: str, tpp: int, n: int, rep: int, *, profile: str = ""
    ) -> dict[str, Any]:
        """One burst of ``n`` ticks into one fresh client process (encrypted when the
        simulator is)."""
        plan = self.plan
        timeout = self.push_timeout(client, n, tpp)
        common = ["--code", CODE, "--n", str(n), "--timeout", f"{timeout - 10:.0f}"]
        if self.sim_encrypted:
            common += ["--rsa-key", self.rsa_key()]
        if client == "floor":
            module, args, sdk = "benchmarks.client_floor", ["push", *common], False
        elif client == "sdk":
            module, args, sdk = "benchmarks.client_sdk", ["push", *common], True
        elif client == "sdk-slow":
            module, sdk = "benchmarks.client_sdk", True
            args = ["slow", *common, "--tpp", str(tpp)]
        else:
            module, sdk = "benchmarks.client_aiofutu", False
            modes = {"models": "models", "models-ws": "models", "frames": "frames", "slow": "slow"}
            mode = modes[client]
            args = [mode, *common]
            if mode == "models":
                args += ["--buffer", str(plan.stream_buffer), "--overflow", plan.stream_overflow]
            elif mode == "frames":
                args += [
                    "--buffer",
                    str(plan.frames_buffer),
                    "--overflow",
                    plan.stream_overflow,
                    "--max-rows",
                    str(plan.frames_max_rows),
                    "--max-latency",
                    str(plan.frames_max_latency),
                ]
            else:
                args += ["--buffer", str(plan.slow_buffer), "--overflow", "drop_oldest"]
            if profile:
                args += ["--profile", profile]
        sim = self.sim
        assert sim is not None
        port = 0
        if client.endswith("-ws"):  # the same client, through the simulator's WebSocket gateway
            args += ["--transport", "websocket"]
            port = sim.websocket_port
        proc = self.child(f"{client}-{tpp}-{rep}", module, args, sdk=sdk, port=port)
        ok = False
        try:
            proc.expect("ready", 60)
            sim.send(f"burst {CODE} {n} {tpp}")
            done = sim.expect("done", timeout)
            result = proc.expect("result", timeout)
            proc.finish()
            ok = True
        finally:
            proc.kill()
            if not ok:  # the simulator may still be bursting into a dead client: start afresh
                self.start_sim()
        if result["ticks"] < n:
            raise BenchError(f"{proc.name}: only {result['ticks']} of {n} ticks")
        elapsed = result["t_last"] - done["t_write_start"]
        run = {
            "client": client,
            "ticks_per_push": tpp,
            "encrypted": self.sim_encrypted,
            "ticks": n,
            "rep": rep,
            "rate": n / elapsed if elapsed > 0 else float("inf"),
            "rate_from_first_tick": (n - 1) / (result["t_last"] - result["t_first"])
            if result["t_last"] > result["t_first"]
            else float("inf"),
            "first_tick_latency_s": result["t_first"] - done["t_write_start"],
            # from the simulator's last write to the last tick in user code
            "tail_s": result["t_last"] - done["t_done"],
            "cpu_us_per_tick": result["cpu_s"] / n * 1e6,
            "maxrss_mib": result["maxrss_kib"] / 1024,
            "rss_growth_mib": (result["maxrss_kib"] - result["rss_at_start_kib"]) / 1024,
            "sim": {k: v for k, v in done.items() if k != "event"},
            "client_result": {k: v for k, v in result.items() if k != "event"},
        }
        return run

    def push_section(self, tpp: int, section: str = "") -> None:
        plan = self.plan
        section = section or f"push{tpp}"
        clients = ["floor", "models", "frames", "sdk"]
        for rep in range(max(plan.repeat, plan.sdk_repeat)):
            for client in clients:
                reps = plan.sdk_repeat if client == "sdk" else plan.repeat
                if rep >= reps:
                    continue
                self.attempt(
                    section,
                    lambda c=client, r=rep: self.push_run(c, tpp, plan.n_push, r),
                    f"{client} {tpp} tick(s)/push #{rep + 1}",
                )
        if plan.profile_dir and not self.sim_encrypted:
            Path(plan.profile_dir).mkdir(parents=True, exist_ok=True)
            for client in ("models", "frames"):
                path = str(Path(plan.profile_dir).resolve() / f"{client}-{tpp}tpp.prof")
                try:
                    self.push_run(client, tpp, plan.n_push, 0, profile=path)
                except BenchError as exc:
                    self.errors.append(f"profile {client} {tpp}: {exc}")
                    continue
                print(f"  profile of {client} at {tpp} tick(s)/push written to {path}")

    def websocket_section(self) -> None:
        """push1 into ticker_stream over TCP and over the WebSocket gateway, alternately, from
        one simulator (the same burst, the same client code; only the transport differs)."""
        plan = self.plan
        for rep in range(plan.repeat):
            for client in ("models", "models-ws"):
                self.attempt(
                    "push1ws",
                    lambda c=client, r=rep: self.push_run(c, 1, plan.n_push, r),
                    f"{client} 1 tick(s)/push #{rep + 1}",
                )

    def encrypted_section(self) -> None:
        """push1 again with RSA + AES-CBC on every connection (its own simulator)."""
        try:
            self.start_sim(encrypted=True)
            self.push_section(1, "push1aes")
        except BenchError as exc:
            self.errors.append(f"push1aes: {exc}")
        finally:
            self.start_sim(encrypted=False)

    def slow_section(self) -> None:
        plan = self.plan
        for client in ("slow", "sdk-slow"):
            reps = plan.sdk_repeat if client == "sdk-slow" else plan.repeat
            for rep in range(min(reps, 2)):
                self.attempt(
                    "slow",
                    lambda c=client, r=rep: self.push_run(c, 1, plan.n_slow, r),
                    f"{client} #{rep + 1}",
                )

    # -- requests -------------------------------------------------------------------------

    def simple_run(
        self, name: str, module: str, args: list[str], timeout: float, *, sdk: bool
    ) -> dict[str, Any]:
        proc = self.child(name, module, args, sdk=sdk)
        try:
            result = proc.expect("result", timeout)
            proc.finish()
        finally:
            proc.kill()
        return result

    def rt_section(self) -> None:
        plan = self.plan
        common = [
            "rt",
            "--code",
            CODE,
            "--nums",
            "1000,10",
            "--calls",
            str(plan.rt_calls),
            "--warmup",
            str(plan.rt_warmup),
        ]
        for client, module, sdk in (
            ("aiofutu", "benchmarks.client_aiofutu", False),
            ("sdk", "benchmarks.client_sdk", True),
            ("floor", "benchmarks.client_floor", False),
        ):
            self.attempt(
                "rt",
                lambda c=client, m=module, s=sdk: {
                    "client": c,
                    **self.simple_run(f"rt-{c}", m, common, 240, sdk=s),
                },
                f"get_rt_ticker {client}",
            )

    def snapshot_section(self) -> None:
        """get_market_snapshot of 400 codes, on a simulator of its own that knows any code."""
        plan = self.plan
        args = ["snapshot", "--codes", str(SNAPSHOT_CODES), "--calls", str(plan.snapshot_calls)]
        args += ["--warmup", str(plan.snapshot_warmup)]
        shared = self.sim
        argv = [sys.executable, "-m", "benchmarks.sim_proc", "--allow-any-code"]
        argv += ["--max-ticks", "20"]  # the tape each made-up security starts with
        argv += ["--no-rate-limits"]  # both clients make more than 60 requests in 30 s
        self.sim_starts += 1
        sim = Child(f"sim-{self.sim_starts}-snapshot", argv, env=self.env(), log_dir=self.logs)
        try:
            sim.port = int(sim.expect("ready", 30)["port"])
            self.sim = sim
            for client, module, sdk in (
                ("aiofutu", "benchmarks.client_aiofutu", False),
                ("sdk", "benchmarks.client_sdk", True),
            ):
                self.attempt(
                    "snapshot",
                    lambda c=client, m=module, s=sdk: {
                        "client": c,
                        **self.simple_run(f"snapshot-{c}", m, args, 240, sdk=s),
                    },
                    f"get_market_snapshot({SNAPSHOT_CODES}) {client}",
                )
        finally:
            self.sim = shared
            sim.kill()

    def connect_section(self) -> None:
        plan = self.plan
        args = ["connect", "--count", str(plan.connects), "--warmup", "1"]
        for client, module, sdk in (
            ("aiofutu", "benchmarks.client_aiofutu", False),
            ("sdk", "benchmarks.client_sdk", True),
        ):
            self.attempt(
                "connect",
                lambda c=client, m=module, s=sdk: {
                    "client": c,
                    **self.simple_run(f"connect-{c}", m, args, 120, sdk=s),
                },
                f"connect {client}",
            )

    def import_section(self) -> None:
        code = (
            "import sys, time\n"
            "t = time.perf_counter()\n"
            "import {mod}\n"
            "dt = time.perf_counter() - t\n"
            "import json\n"
            "print({prefix!r} + json.dumps({{'event': 'result', 's': dt, "
            "'polars': 'polars' in sys.modules, 'pandas': 'pandas' in sys.modules}}))\n"
        )
        for mod in ("aiofutu", "futu"):

            def run(mod: str = mod) -> dict[str, Any]:
                times: list[float] = []
                loaded: dict[str, bool] = {}
                for i in range(self.plan.imports + 1):  # the first one warms the disk cache
                    argv = [sys.executable, "-c", code.format(mod=mod, prefix=PREFIX)]
                    env = self.env(sdk=mod == "futu")
                    # as for an installed package: byte-code cached (by the warm-up run)
                    env.pop("PYTHONDONTWRITEBYTECODE", None)
                    proc = Child(
                        f"{len(self.runs):03d}-import-{mod}-{i}", argv, env=env, log_dir=self.logs
                    )
                    try:
                        result = proc.expect("result", 60)
                        proc.finish()
                    finally:
                        proc.kill()
                    if i:
                        times.append(result["s"])
                        loaded = {"polars": result["polars"], "pandas": result["pandas"]}
                return {"client": mod, "latencies": times, **loaded}

            self.attempt("import", run, f"import {mod}")

    # -- bookkeeping ------------------------------------------------------------------------

    def bridge_section(self) -> None:
        """The NATS bridge (benchmarks/client_bridge.py owns its nats-server, sim and bridge)."""
        n = "20000" if self.plan.quick else "50000"
        for rep in range(self.plan.repeat):  # interleaved: the floor and the bridge, same load
            for client, args in (
                ("nats-floor", ["floor", "--n", n]),
                ("bridge", ["through", "--n", n]),
                ("bridge-5k", ["latency", "--rate", "5000", "--seconds", "5"]),
                ("nats-floor-5k", ["floor-latency", "--rate", "5000", "--seconds", "5"]),
                ("bridge-books", ["books", "--n", "5000" if self.plan.quick else "10000"]),
            ):
                self.attempt(
                    "bridge",
                    lambda c=client, a=args, r=rep: {
                        "client": c,
                        **self.simple_run(
                            f"bridge-{c}-{r}", "benchmarks.client_bridge", a, 240, sdk=False
                        ),
                    },
                    client,
                )

    def attempt(self, section: str, fn: Any, label: str) -> None:
        t0 = time.monotonic()
        print(f"  {section:8s} {label} ...", end="", flush=True)
        try:
            run = fn()
        except BenchError as exc:
            print(f" FAILED ({time.monotonic() - t0:.1f}s)", flush=True)
            self.errors.append(f"{section} {label}: {exc}")
            print(f"    {exc}", file=sys.stderr)
            return
        run["section"] = section
        self.runs.append(run)
        note = f" {run['rate']:,.0f} ticks/s" if "rate" in run and section != "slow" else ""
        print(f"{note} ({time.monotonic() - t0:.1f}s)", flush=True)

    def run(self) -> None:
        self.start_sim()
        sections = self.plan.sections
        steps: tuple[tuple[str, Callable[[], None]], ...] = (
            ("push1", lambda: self.push_section(1)),
            ("push10", lambda: self.push_section(10)),
            ("push1aes", self.encrypted_section),
            ("push1ws", self.websocket_section),
            ("slow", self.slow_section),
            ("rt", self.rt_section),
            ("connect", self.connect_section),
            ("import", self.import_section),
            ("bridge", self.bridge_section),
            ("snapshot", self.snapshot_section),
            ("kline", lambda: series.kline_section(self)),
            ("klinepush", lambda: series.klinepush_section(self)),
            ("state", lambda: state_section(self)),
            ("history", lambda: client_history.section(self)),
        )
        for name, fn in steps:
            if name in sections:
                fn()
        if self.sim is not None:
            with contextlib.suppress(BenchError):
                self.sim.send("quit")
            self.sim.finish(10)


# -- statistics and the table ---------------------------------------------------------------


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


@dataclass
class Row:
    section: str
    measurement: str
    client: str
    unit: str
    median: float
    lo: float
    hi: float
    spread: str  # "min..max" or "p99"
    n: int
    higher_is_better: bool
    vs_sdk: float | None = None  # aiofutu / SDK
    vs_floor: float | None = None  # aiofutu / floor
    target: str = ""
    met: bool | None = None


def _stats(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def build_rows(runs: list[dict[str, Any]]) -> list[Row]:
    rows: list[Row] = []

    def of(section: str, client: str, tpp: int | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in runs
            if r["section"] == section
            and r["client"] == client
            and (tpp is None or r.get("ticks_per_push") == tpp)
        ]

    labels = {
        "sdk": "SDK TickerHandlerBase (pandas rows)",
        "models": "aiofutu async for ticker_stream (Ticker)",
        "frames": "aiofutu ticker_frames (polars rows)",
        "floor": "floor: bare asyncio reader",
    }
    push_targets = {
        (1, "models"): (35.0, 0.4),
        (10, "models"): (12.0, None),
        (10, "frames"): (25.0, 0.5),
    }
    for section, tpp, measurement, short, encrypted in PUSH_SECTIONS:
        medians: dict[str, float] = {}
        for client in ("sdk", "models", "frames", "floor"):
            rs = of(section, client, tpp)
            if rs:
                medians[client] = statistics.median(r["rate"] for r in rs)
        for client in ("sdk", "models", "frames", "floor"):
            rs = of(section, client, tpp)
            if not rs:
                continue
            med, lo, hi = _stats([r["rate"] for r in rs])
            row = Row(
                section,
                measurement,
                labels[client],
                "ticks/s",
                med,
                lo,
                hi,
                "min..max",
                len(rs),
                True,
            )
            if client in ("models", "frames"):
                if "sdk" in medians:
                    row.vs_sdk = med / medians["sdk"]
                if "floor" in medians:
                    row.vs_floor = med / medians["floor"]
                want = None if encrypted else push_targets.get((tpp, client))
                if want:
                    sdk_x, floor_x = want
                    parts = [f">={sdk_x:g}x SDK"]
                    ok = row.vs_sdk is not None and row.vs_sdk >= sdk_x
                    if floor_x is not None:
                        parts.append(f">={floor_x:g} of floor")
                        ok = ok and row.vs_floor is not None and row.vs_floor >= floor_x
                    row.target = ", ".join(parts)
                    row.met = ok if row.vs_sdk is not None else None
            rows.append(row)
        # client CPU and memory during the same runs
        cpu_sdk = [r["cpu_us_per_tick"] for r in of(section, "sdk", tpp)]
        for client in ("sdk", "models", "frames", "floor"):
            rs = of(section, client, tpp)
            if not rs:
                continue
            med, lo, hi = _stats([r["cpu_us_per_tick"] for r in rs])
            row = Row(
                section,
                f"CPU/tick, {short}",
                labels[client],
                "us/tick",
                med,
                lo,
                hi,
                "min..max",
                len(rs),
                False,
            )
            if client != "sdk" and cpu_sdk:
                row.vs_sdk = med / statistics.median(cpu_sdk)
            rows.append(row)
        for client in ("sdk", "models", "frames", "floor"):
            rs = of(section, client, tpp)
            if not rs:
                continue
            med, lo, hi = _stats([r["maxrss_mib"] for r in rs])
            rows.append(
                Row(
                    section,
                    f"peak RSS, {short}",
                    labels[client],
                    "MiB",
                    med,
                    lo,
                    hi,
                    "min..max",
                    len(rs),
                    False,
                )
            )
    # slow consumer
    slow_sdk = of("slow", "sdk-slow")
    for client, label in (
        ("sdk-slow", "SDK handler sleeping (unbounded queue)"),
        ("slow", "aiofutu ticker_stream buffer=10k drop_oldest"),
    ):
        rs = of("slow", client)
        if not rs:
            continue
        for key, what in (("maxrss_mib", "peak RSS"), ("rss_growth_mib", "RSS growth")):
            med, lo, hi = _stats([r[key] for r in rs])
            row = Row(
                "slow",
                f"slow consumer {what}",
                label,
                "MiB",
                med,
                lo,
                hi,
                "min..max",
                len(rs),
                False,
            )
            if client == "slow" and slow_sdk:
                row.vs_sdk = med / statistics.median(r[key] for r in slow_sdk)
                if key == "maxrss_mib":
                    row.target = "<=1/5 of SDK"
                    row.met = row.vs_sdk <= 0.2
            rows.append(row)
    # get_rt_ticker
    rt = {r["client"]: r["latencies"] for r in runs if r["section"] == "rt"}
    sdk_rt = rt.get("sdk", {})
    rt_targets = {
        ("list", 1000): 4.0,
        ("polars", 1000): 5.0,
        ("list", 10): 3.0,
        ("polars", 10): 3.0,
    }
    for num in (1000, 10):
        sdk_key = f"pandas:{num}"
        for client, key, label in (
            ("sdk", sdk_key, "SDK get_rt_ticker (pandas)"),
            ("aiofutu", f"list:{num}", "aiofutu get_rt_ticker (list[Ticker])"),
            ("aiofutu", f"polars:{num}", "aiofutu get_rt_ticker_frame (polars)"),
            ("floor", f"raw:{num}", "floor: blocking socket + ParseFromString"),
            ("floor", f"async:{num}", "floor: bare asyncio protocol + ParseFromString"),
        ):
            values = rt.get(client, {}).get(key)
            if not values:
                continue
            ms = [v * 1e3 for v in values]
            row = Row(
                "rt",
                f"get_rt_ticker({num})",
                label,
                "ms",
                statistics.median(ms),
                min(ms),
                _p99(ms),
                "p99",
                len(ms),
                False,
            )
            if client == "aiofutu" and sdk_rt.get(sdk_key):
                row.vs_sdk = row.median / (statistics.median(sdk_rt[sdk_key]) * 1e3)
                faster = rt_targets[(key.split(":")[0], num)]
                row.target = f">={faster:g}x faster"
                row.met = 1 / row.vs_sdk >= faster
            rows.append(row)
    # get_market_snapshot
    snap = {r["client"]: r["latencies"] for r in runs if r["section"] == "snapshot"}
    sdk_snap = snap.get("sdk", {}).get(f"pandas:{SNAPSHOT_CODES}")
    for client, key, label in (
        ("sdk", "pandas", "SDK get_market_snapshot (pandas)"),
        ("aiofutu", "models", "aiofutu get_market_snapshot (list[Snapshot])"),
        ("aiofutu", "polars", "aiofutu get_market_snapshot_frame (polars)"),
    ):
        values = snap.get(client, {}).get(f"{key}:{SNAPSHOT_CODES}")
        if not values:
            continue
        ms = [v * 1e3 for v in values]
        row = Row(
            "snapshot",
            f"get_market_snapshot({SNAPSHOT_CODES})",
            label,
            "ms",
            statistics.median(ms),
            min(ms),
            _p99(ms),
            "p99",
            len(ms),
            False,
        )
        if client == "aiofutu" and sdk_snap:
            row.vs_sdk = row.median / (statistics.median(sdk_snap) * 1e3)
            row.target = ">=5x faster"
            row.met = 1 / row.vs_sdk >= 5
        rows.append(row)
    # connect and import
    for section, measurement, names in (
        (
            "connect",
            "connect until ready",
            (("sdk", "SDK OpenQuoteContext(...)"), ("aiofutu", "aiofutu async with connect()")),
        ),
        ("import", "import time", (("futu", "import futu"), ("aiofutu", "import aiofutu"))),
    ):
        base: float | None = None
        for client, label in names:
            rs = of(section, client)
            if not rs:
                continue
            ms = [v * 1e3 for v in rs[0]["latencies"]]
            med, lo, hi = _stats(ms)
            row = Row(section, measurement, label, "ms", med, lo, hi, "min..max", len(ms), False)
            if client in ("sdk", "futu"):
                base = med
            elif base:
                row.vs_sdk = med / base
            if client == "aiofutu" and section == "import":
                row.target = "<150 ms"
                row.met = med < 150
                if rs[0].get("polars"):
                    row.target += " (polars was imported!)"
            rows.append(row)
    rows.extend(_websocket_rows(of))
    rows.extend(_bridge_rows(of))
    rows.extend(client_history.rows(of, Row))
    rows.extend(state_rows(runs))
    rows.extend(series.series_rows(runs, Row))
    return rows


def _websocket_rows(of: Callable[..., list[dict[str, Any]]]) -> list[Row]:
    """push1ws: ticker_stream over TCP and over the WebSocket gateway, same run."""
    labels = {
        "models": "aiofutu ticker_stream over TCP",
        "models-ws": "aiofutu ticker_stream over WebSocket",
    }
    rows: list[Row] = []
    tcp = [r["rate"] for r in of("push1ws", "models", 1)]
    for key, what, unit, higher in (
        ("rate", "push 1 tick/msg, TCP vs WebSocket", "ticks/s", True),
        ("cpu_us_per_tick", "CPU/tick, push 1 TCP vs WebSocket", "us/tick", False),
    ):
        for client, label in labels.items():
            rs = of("push1ws", client, 1)
            if not rs:
                continue
            med, lo, hi = _stats([r[key] for r in rs])
            row = Row("push1ws", what, label, unit, med, lo, hi, "min..max", len(rs), higher)
            if client == "models-ws" and key == "rate" and tcp:
                row.target = f"{med / statistics.median(tcp):.2f}x TCP (info)"
            rows.append(row)
    return rows


def _bridge_rows(of: Callable[[str, str], list[dict[str, Any]]]) -> list[Row]:
    """sim -> bridge -> NATS -> bus throughput beside plain nats-py, and latency at 5k/s."""
    rows: list[Row] = []
    floor = [r["rate"] for r in of("bridge", "nats-floor")]
    labels = {
        "nats-floor": "floor: plain nats-py publish_async, same bytes",
        "bridge": "sim -> aiofutu bridge -> NATS -> aiofutu.bus",
    }
    for client, label in labels.items():
        rates = [r["rate"] for r in of("bridge", client)]
        if not rates:
            continue
        med, lo, hi = _stats(rates)
        row = Row("bridge", "bridge ticks/s", label, "ticks/s", med, lo, hi, "min..max",
                  len(rates), True)  # fmt: skip
        if client == "bridge" and floor:
            row.vs_floor = med / statistics.median(floor)
            row.target = ">=0.8 of floor"
            row.met = row.vs_floor >= 0.8
        rows.append(row)
    books = [r["rate"] for r in of("bridge", "bridge-books")]
    if books:
        med, lo, hi = _stats(books)
        rows.append(Row("bridge", "bridge order-book updates/s",
                        "sim books -> bridge --kinds order_book -> NATS -> bus.order_book_stream",
                        "pushes/s", med, lo, hi, "min..max", len(books), True))  # fmt: skip
    floor_p99 = [r["p99_ms"] for r in of("bridge", "nats-floor-5k")]
    for client in ("bridge", "bridge-5k", "nats-floor-5k"):
        rs = of("bridge", client)
        if not rs:
            continue
        p50 = statistics.median(r["p50_ms"] for r in rs)
        p99 = statistics.median(r["p99_ms"] for r in rs)
        what = "latency, burst" if client == "bridge" else "latency at 5,000 ticks/s"
        label = (
            "floor: plain nats-py publisher -> NATS -> plain subscriber, same rhythm"
            if client == "nats-floor-5k"
            else "bridge receive -> bus model"
        )
        lo = min(r["p50_ms"] for r in rs)
        row = Row("bridge", what, label, "ms", p50, lo, p99, "p99", len(rs), False)
        if client == "bridge-5k":
            row.target = "p99 <5 ms"
            row.met = p99 < 5.0
            if floor_p99:
                row.vs_floor = p99 / statistics.median(floor_p99)
        rows.append(row)
    return rows


def _fmt(value: float, unit: str) -> str:
    if unit in ("ticks/s", "pushes/s"):
        return f"{value:,.0f}"
    if unit in ("ms", "us/tick"):
        return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
    return f"{value:,.1f}"


def _vs_sdk(row: Row) -> str:
    if row.vs_sdk is None:
        return ""
    if row.higher_is_better:
        return f"{row.vs_sdk:,.1f}x"
    if 0 < row.vs_sdk < 1:
        word = "faster" if row.unit == "ms" else "less"
        return f"{row.vs_sdk:.3f} ({1 / row.vs_sdk:,.1f}x {word})"
    return f"{row.vs_sdk:.3f}"


def render(rows: list[Row], machine: dict[str, Any], plan: Plan) -> str:
    header = (
        "measurement",
        "client",
        "unit",
        "median",
        "spread",
        "aiofutu/SDK",
        "/floor",
        "target",
    )
    table: list[tuple[str, ...]] = []
    last = ""
    for row in rows:
        spread = f"{_fmt(row.lo, row.unit)}..{_fmt(row.hi, row.unit)}"
        if row.spread == "p99":
            spread = f"p99 {_fmt(row.hi, row.unit)}"
        target = row.target
        if row.met is not None:
            target = f"{target}: {'MET' if row.met else 'NOT MET'}"
        table.append(
            (
                row.measurement if row.measurement != last else "",
                row.client,
                row.unit,
                _fmt(row.median, row.unit),
                f"{spread} (n={row.n})",
                _vs_sdk(row),
                f"{row.vs_floor:.2f}" if row.vs_floor is not None else "",
                target,
            )
        )
        last = row.measurement
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    right = {3, 5, 6}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [
        "aiofutu vs futu-api (official SDK) against the bundled simulator, same run",
        "machine: "
        + ", ".join(
            f"{k}={machine[k]}" for k in ("cores", "python", "protobuf", "backend", "platform")
        ),
        f"CPUs busy with other work just before: {machine.get('cpu_busy_before')}; "
        f"load average (1/5/15 min) before {machine.get('loadavg_before')}, "
        f"after {machine.get('loadavg_after')}",
        f"aiofutu at commit {machine['aiofutu_git']['head'] or '?'}"
        + _dirty_note(machine["aiofutu_git"]["uncommitted"]),
        f"versions: aiofutu={machine['aiofutu']} futu-api={machine['futu-api']} "
        f"polars={machine['polars']} pandas={machine['pandas']} pydantic={machine['pydantic']}",
        f"push bursts: {plan.n_push:,} ticks; repeats: aiofutu/floor {plan.repeat}, SDK "
        f"{plan.sdk_repeat}; rate = ticks / (last tick delivered - first byte of the burst "
        f"written); ticker_stream buffer={plan.stream_buffer:,} overflow={plan.stream_overflow}; "
        f"ticker_frames max_rows={plan.frames_max_rows:,} max_latency={plan.frames_max_latency}s"
        + ("; QUICK run" if plan.quick else ""),
        "",
        line(header),
        line(tuple("-" * w for w in widths)),
    ]
    last_section = ""
    for row, cells in zip(rows, table, strict=True):
        if last_section and row.section != last_section:
            out.append("")
        last_section = row.section
        out.append(line(cells))
    return "\n".join(out)


def _dirty_note(files: list[str]) -> str:
    if not files:
        return " (clean)"
    if len(files) > 4:
        return f" plus uncommitted changes in {len(files)} files (listed in the JSON)"
    return f" plus uncommitted changes in {', '.join(files)}"


def machine_info() -> dict[str, Any]:
    from google.protobuf.internal import api_implementation

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "absent"

    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "protobuf": version("protobuf"),
        "backend": api_implementation.Type(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "aiofutu": version("aiofutu"),
        "futu-api": version("futu-api"),
        "polars": version("polars"),
        "pandas": version("pandas"),
        "pydantic": version("pydantic"),
        "anyio": version("anyio"),
        "monotonic_clock": time.get_clock_info("monotonic").implementation,
        "aiofutu_git": _git_state(),
    }


def _git_state() -> dict[str, Any]:
    """The commit the measured aiofutu is at, and its files with uncommitted changes."""

    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return out.stdout.rstrip("\n")

    dirty = [line[3:] for line in git("status", "--porcelain", "--", "aiofutu").splitlines()]
    return {"head": git("rev-parse", "--short", "HEAD").strip(), "uncommitted": dirty}


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _cpu_busy(seconds: float = 1.0) -> float | None:
    """Fraction of all CPUs busy over the next ``seconds`` (other processes: we sleep)."""
    first = _cpu_times()
    time.sleep(seconds)
    second = _cpu_times()
    if first is None or second is None or second[1] == first[1]:
        return None
    return round((second[0] - first[0]) / (second[1] - first[1]), 3)


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return [0.0, 0.0, 0.0]


def run_micro(extra: list[str]) -> int:
    if not any(a.startswith("--benchmark-columns") for a in extra):
        extra = ["--benchmark-columns=min,median,iqr,ops,rounds", *extra]
    argv = [
        sys.executable,
        "-m",
        "pytest",
        str(ROOT / "benchmarks" / "test_micro.py"),
        "-p",
        "no:cacheprovider",
        *extra,
    ]
    print("$ " + " ".join(argv), flush=True)
    try:
        return subprocess.run(argv, cwd=ROOT, timeout=600, check=False).returncode
    except subprocess.TimeoutExpired:
        print("micro-benchmarks timed out after 600s", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="aiofutu vs the official SDK against the bundled simulator (see README.md)",
    )
    parser.add_argument("--quick", action="store_true", help="small bursts, 1 repeat (~1 min)")
    parser.add_argument("--repeat", type=int, help="repeats per measurement (default 3)")
    parser.add_argument("--sdk-repeat", type=int, help="repeats for the SDK (default 3)")
    parser.add_argument("--json", default=str(DEFAULT_JSON), help="where to write the results")
    parser.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument(
        "--profile", metavar="DIR", help="also write cProfile stats of aiofutu push clients"
    )
    parser.add_argument(
        "--micro",
        action="store_true",
        help="run the pytest-benchmark micro-benchmarks instead (extra args go to pytest)",
    )
    args, extra = parser.parse_known_args(argv)
    if args.micro:
        return run_micro(extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    plan = make_plan(args)
    machine = machine_info()
    if machine["monotonic_clock"] != "clock_gettime(CLOCK_MONOTONIC)":
        print(
            "warning: time.monotonic is not CLOCK_MONOTONIC here; cross-process timestamps "
            "may not compare",
            file=sys.stderr,
        )
    started = time.monotonic()
    machine["loadavg_before"] = _loadavg()
    machine["cpu_busy_before"] = busy = _cpu_busy()
    if busy is not None and busy > 0.25:
        print(
            f"warning: {busy:.0%} of the CPUs were busy just before the run: other processes "
            "compete for them and the numbers will be lower and noisier",
            file=sys.stderr,
        )
    print(f"benchmarks ({'quick' if plan.quick else 'full'}): sections {','.join(plan.sections)}")
    with tempfile.TemporaryDirectory(prefix="aiofutu-bench-") as tmp:
        bench = Bench(plan, Path(tmp))
        try:
            bench.run()
        except BenchError as exc:
            bench.errors.append(f"aborted: {exc}")
            print(f"aborted: {exc}", file=sys.stderr)
        finally:
            for child in list(Child.live):
                child.kill()
    elapsed = time.monotonic() - started
    machine["loadavg_after"] = _loadavg()
    rows = build_rows(bench.runs)
    text = render(rows, machine, plan)
    print()
    print(text)
    if bench.errors:
        print("\nerrors:")
        for err in bench.errors:
            print(f"  {err}")
    print(f"\nelapsed {elapsed:.0f}s")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "machine": machine,
        "plan": dataclasses.asdict(plan),
        "elapsed_s": elapsed,
        "rows": [dataclasses.asdict(r) for r in rows],
        "runs": bench.runs,
        "errors": bench.errors,
        "table": text,
    }
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"results written to {out}")
    return 1 if bench.errors else 0
