"""The simulator server: a TCP listener, the live tick flow, bursts and connection faults.

Everything runs in task groups owned by the ``async with`` block, on anyio alone, so the
simulator works under asyncio and trio and leaves no task or socket behind when the block exits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
from anyio import AsyncContextManagerMixin
from anyio.abc import SocketAttribute

from ..codes import parse_code
from ._market import SecurityState, SimMarket
from ._scenarios import Faults
from ._session import Session, SubKey
from ._wire import PushEncoder

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

    from anyio.abc import SocketStream

    from .._pb import qot_common_pb2

__all__ = ("BurstResult", "SimConfig", "Simulator", "run_forever", "serve")

logger = logging.getLogger("aiofutu.sim")

_MIB = 1024 * 1024


@dataclass(frozen=True)
class SimConfig:
    """Everything a :class:`Simulator` is built from (runtime faults live in :class:`Faults`)."""

    host: str = "127.0.0.1"
    #: 0 picks a free port; read the bound one from ``Simulator.port``.
    port: int = 0
    #: Seeds every security's random walk, so prices and volumes repeat run to run.
    seed: int = 1
    #: Live ticks per second per active security; 0 = no live flow (only bursts).
    tick_rate: float = 50.0
    #: Securities that get live ticks from the start (subscribed ones are added on demand).
    codes: tuple[str, ...] = ("HK.00700", "US.AAPL")
    #: Sent in the InitConnect reply (seconds).
    keepalive_interval: int = 10
    #: Initial value of ``Faults.reply_delay``.
    reply_delay: float = 0.0
    #: Subscriptions younger than this (seconds) cannot be cancelled (OpenD: one minute).
    unsub_min_age: float = 60.0
    #: Distinct (security, subtype) pairs over all connections before Qot_Sub is refused.
    sub_quota: int = 1000
    #: Ring buffer length per security and the cap on Qot_GetTicker's maxRetNum.
    max_ticks: int = 1000
    #: Also set ``Ticker.hpVolume`` (the SDK then reports a float volume).
    hp_volume: bool = False
    server_ver: int = 1011
    server_build_no: int = 7108
    login_user_id: int = 12_345_678
    #: A connection whose unsent replies and live pushes exceed this many bytes is dropped.
    max_push_backlog: int = 64 * _MIB
    #: A burst waits while more than this many bytes are queued for a connection.
    burst_high_water: int = 1 * _MIB

    def __post_init__(self) -> None:
        if self.tick_rate < 0:
            raise ValueError("tick_rate must be >= 0")
        if self.max_ticks < 1:
            raise ValueError("max_ticks must be >= 1")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be in 0..65535")
        object.__setattr__(self, "codes", tuple(self.codes))
        for code in self.codes:
            parse_code(code)


@dataclass(frozen=True)
class BurstResult:
    """What a :meth:`Simulator.burst` did, for benchmarks."""

    ticks: int
    messages: int
    connections: int
    #: Frame bytes written to each connection.
    bytes_per_connection: int
    #: Generating, serializing and framing every tick, before the first write.
    encode_seconds: float
    #: From the first write until every connection's bytes were handed to the socket.
    write_seconds: float

    @property
    def write_ticks_per_second(self) -> float:
        """Ticks written per second per connection."""
        return self.ticks / self.write_seconds if self.write_seconds > 0 else float("inf")


class Simulator(AsyncContextManagerMixin):
    """A fake OpenD quote gateway on a real TCP port; use ``async with`` (or :func:`serve`)."""

    def __init__(self, config: SimConfig | None = None, /, **options: Any) -> None:
        cfg = config or SimConfig()
        self.config: SimConfig = dataclasses.replace(cfg, **options) if options else cfg
        cfg = self.config
        self.market = SimMarket(
            seed=cfg.seed, max_ticks=cfg.max_ticks, hp_volume=cfg.hp_volume, codes=cfg.codes
        )
        self.faults = Faults(reply_delay=cfg.reply_delay)
        self.host = cfg.host
        self.port = cfg.port
        self._sessions: dict[int, Session] = {}
        self._watchers: dict[str, set[Session]] = {}  # code -> connections with TICKER push
        self._encoders: dict[str, PushEncoder] = {}
        self._rng = random.Random(f"{cfg.seed}:server")
        self._next_conn_id = 7_000_000_000_000_000_000 + self._rng.randrange(1 << 40)

    # ---- runtime knobs --------------------------------------------------------------------

    @property
    def stall(self) -> bool:
        """While true, requests go unanswered and pushes are withheld (see :class:`Faults`)."""
        return self.faults.stall

    @stall.setter
    def stall(self, value: bool) -> None:
        self.faults.stall = value

    @property
    def reply_delay(self) -> float:
        """Seconds before each reply is sent."""
        return self.faults.reply_delay

    @reply_delay.setter
    def reply_delay(self, value: float) -> None:
        self.faults.reply_delay = value

    @property
    def connection_count(self) -> int:
        """Open client connections."""
        return len(self._sessions)

    def sessions(self) -> list[Session]:
        """The open connections, oldest first."""
        return list(self._sessions.values())

    # ---- lifecycle ------------------------------------------------------------------------

    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncIterator[Simulator]:
        cfg = self.config
        listener = await anyio.create_tcp_listener(local_host=cfg.host, local_port=cfg.port)
        async with listener:
            self.port = listener.extra(SocketAttribute.local_port)
            logger.info("OpenD simulator listening on %s:%d", self.host, self.port)
            # The body's exception is re-raised after the task group, so callers see it as is
            # rather than wrapped in an ExceptionGroup.
            error: BaseException | None = None
            async with anyio.create_task_group() as tg:
                tg.start_soon(listener.serve, self._handle)
                tg.start_soon(self._live_loop)
                try:
                    yield self
                except BaseException as exc:
                    error = exc
                finally:
                    tg.cancel_scope.cancel()
        logger.info("OpenD simulator on port %d stopped", self.port)
        if error is not None:
            raise error

    async def _handle(self, stream: SocketStream) -> None:
        if self.faults.refuse_connections:
            await stream.aclose()
            return
        conn_id = self._next_conn_id
        self._next_conn_id += 1
        aes_key = "".join(self._rng.choices("0123456789ABCDEF", k=16))
        session = Session(self, stream, conn_id, aes_key)
        self._sessions[conn_id] = session
        logger.debug("connection %d opened", conn_id)
        try:
            await session.run()
        except Exception:
            logger.exception("connection %d: simulator error", conn_id)

    def forget(self, session: Session) -> None:
        """Called by a closing session: drop it from every registry."""
        self._sessions.pop(session.conn_id, None)
        for code, _ in session.pushes:
            self.watch(session, code, False)

    def watch(self, session: Session, code: str, on: bool) -> None:
        """Add or remove ``session`` from the TICKER push targets of ``code``."""
        watchers = self._watchers.setdefault(code, set())
        if on:
            watchers.add(session)
        else:
            watchers.discard(session)

    def used_quota(self) -> set[SubKey]:
        """Distinct (code, subtype) subscriptions over all connections."""
        used: set[SubKey] = set()
        for session in self._sessions.values():
            used.update(session.subs)
        return used

    def encoder(self, sec: SecurityState) -> PushEncoder:
        """The cached 3011 body builder of ``sec``."""
        encoder = self._encoders.get(sec.code)
        if encoder is None:
            encoder = self._encoders[sec.code] = PushEncoder(sec.security, sec.name)
        return encoder

    # ---- ticks ----------------------------------------------------------------------------

    async def _live_loop(self) -> None:
        rate = self.config.tick_rate
        if rate <= 0:
            return
        interval = max(1.0 / rate, 0.01)
        start = anyio.current_time()
        emitted = 0
        while True:
            await anyio.sleep(interval)
            target = int((anyio.current_time() - start) * rate)
            due = min(target - emitted, max(int(rate), 1))  # after a long block, do not catch up
            emitted = target
            if due <= 0:
                continue
            now = time.time()
            for sec in self.market.live():
                if not sec.paused:
                    self.push_ticks(sec, sec.generate(due, now))

    def push_ticks(self, sec: SecurityState, ticks: list[qot_common_pb2.Ticker]) -> None:
        """Push ``ticks`` (one per message) to every connection registered for them."""
        watchers = self._watchers.get(sec.code)
        if not watchers or self.faults.stall:
            return
        encoder = self.encoder(sec)
        targets = tuple(watchers)
        for tick in ticks:
            body = encoder.body((tick.SerializeToString(),))
            digest = hashlib.sha1(body).digest()
            for session in targets:
                session.push(body, digest)

    def skip_ticks(self, code: str, n: int) -> None:
        """Advance ``code``'s trade counter by ``n`` without storing or pushing ticks (a gap)."""
        self.market.skip_ticks(code, n)

    async def burst(self, code: str, n: int, *, ticks_per_push: int = 1) -> BurstResult:
        """Make ``n`` new ticks of ``code`` and push them as fast as possible.

        All ticks are generated, serialized and framed first; then each connection registered for
        ``code``'s TICKER push gets them in ~256 KiB writes, with backpressure (nothing is
        dropped). Returns once every byte went to the sockets. Live ticks for ``code`` pause
        meanwhile, so sequences stay in order. The ticks are stored like live ones.
        """
        if n < 0 or ticks_per_push < 1:
            raise ValueError("n must be >= 0 and ticks_per_push >= 1")
        sec = self.market.security(code)
        encoder = self.encoder(sec)
        started = time.perf_counter()
        sec.paused = True
        try:
            bodies: list[bytes] = []
            batch = max(10_000 // ticks_per_push, 1) * ticks_per_push
            for offset in range(0, n, batch):
                raw = [t.SerializeToString() for t in sec.generate(min(batch, n - offset))]
                bodies += [
                    encoder.body(raw[i : i + ticks_per_push])
                    for i in range(0, len(raw), ticks_per_push)
                ]
                await anyio.lowlevel.checkpoint()
            digests = [hashlib.sha1(body).digest() for body in bodies]
            targets = () if self.faults.stall else tuple(self._watchers.get(code, ()))
            work = [(session, session.bulk_chunks(bodies, digests)) for session in targets]
            encoded = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for session, chunks in work:
                    tg.start_soon(session.send_bulk, chunks)
            written = time.perf_counter()
        finally:
            sec.paused = False
        size = sum(len(c) for c in work[0][1]) if work else 0
        result = BurstResult(
            ticks=n,
            messages=len(bodies),
            connections=len(work),
            bytes_per_connection=size,
            encode_seconds=encoded - started,
            write_seconds=written - encoded,
        )
        logger.info("burst %s: %s", code, result)
        return result

    # ---- faults ---------------------------------------------------------------------------

    async def drop_connections(self, *, reset: bool = False) -> None:
        """Close every client connection abruptly and wait until they are gone.

        Unsent data is discarded. The clients see EOF, or with ``reset=True`` a TCP reset
        (``SO_LINGER`` 0), as when OpenD crashes.
        """
        sessions = list(self._sessions.values())
        for session in sessions:
            session.close(reset=reset)
        for session in sessions:
            await session.closed.wait()
        if sessions:
            logger.info("dropped %d connection(s)", len(sessions))


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    seed: int = 1,
    tick_rate: float = 50.0,
    codes: Sequence[str] = ("HK.00700", "US.AAPL"),
    keepalive_interval: int = 10,
    **options: Any,
) -> Simulator:
    """A :class:`Simulator` to use as ``async with sim.serve(...) as server``.

    ``options`` are the other :class:`SimConfig` fields (``reply_delay``, ``unsub_min_age``, ...).
    """
    config = SimConfig(
        host=host,
        port=port,
        seed=seed,
        tick_rate=tick_rate,
        codes=tuple(codes),
        keepalive_interval=keepalive_interval,
        **options,
    )
    return Simulator(config)


async def run_forever(
    config: SimConfig | None = None,
    *,
    on_ready: Callable[[Simulator], object] | None = None,
    **options: Any,
) -> None:
    """Run a simulator until cancelled (for a CLI); ``on_ready`` is called once it listens."""
    async with Simulator(config, **options) as server:
        if on_ready is not None:
            on_ready(server)
        await anyio.sleep_forever()
