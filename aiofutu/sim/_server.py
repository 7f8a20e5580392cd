"""The simulator server: a TCP listener, the live tick flow, bursts and connection faults.

Everything runs in task groups owned by the ``async with`` block, on anyio alone, so the
simulator works under asyncio and trio and leaves no task or socket behind when the block exits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import random
import time
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import anyio.to_thread
from anyio import AsyncContextManagerMixin
from anyio.abc import SocketAttribute

from .._crypto import RsaKey
from ..errors import ConfigurationError
from ._config import SimConfig
from ._limits import ServerLimits
from ._market import SecurityState, SimMarket, trading_markets
from ._replay import Replay
from ._scenarios import Faults
from ._series import SeriesFeed
from ._session import Session, SubKey
from ._state import dump_state, load_state, write_state
from ._states import StateBook, StateBurst
from ._universe import DEFAULT_UNIVERSE
from ._websocket import websocket_gateway
from ._wire import PushEncoder

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

    from anyio.abc import SocketStream, TaskGroup

    from .._pb import qot_common_pb2

__all__ = ("BurstResult", "SimConfig", "Simulator", "StateBurst", "run_forever", "serve")

logger = logging.getLogger("aiofutu.sim")


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
    """A fake OpenD quote gateway on a real TCP port; use ``async with`` (or :func:`serve`).

    With ``rsa_key`` (OpenD's RSA private key) it requires encrypted connections, as OpenD does
    once its ``rsa_private_key`` is set: InitConnect RSA-encrypted with that key, then AES on
    every frame both ways. An InitConnect it cannot use (plain text, another key, an unknown
    ``packetEncAlgo``) gets a plain-text ``retType=-1`` reply that says what to check, and the
    connection is closed. An RSA-encrypted InitConnect that asks for ``packetEncAlgo=-1``
    (None) gets a plain-text session: the proto file documents that OpenD encrypts only when
    the algorithm is not None, and the SDK sends exactly that when it has a key file but
    encryption is off.
    """

    def __init__(self, config: SimConfig | None = None, /, **options: Any) -> None:
        cfg = config or SimConfig()
        self.config: SimConfig = dataclasses.replace(cfg, **options) if options else cfg
        cfg = self.config
        replaying = cfg.replay is not None
        self.market = SimMarket(
            seed=cfg.seed,
            max_ticks=cfg.max_ticks,
            hp_volume=cfg.hp_volume,
            prefill=not replaying,
            universe={**DEFAULT_UNIVERSE, **cfg.security_list()},
            allow_any_code=cfg.allow_any_code,
            second_sequences=cfg.us_second_sequences,
        )
        for code in cfg.codes:
            self.market.add(code, self.market.universe.get(code))
        if not replaying and cfg.state_file is None:
            for code in cfg.codes:
                self.market.activate(code)  # else once the state file was read
        self.faults = Faults(
            reply_delay=cfg.reply_delay,
            corrupt_replies=cfg.corrupt_replies,
            corrupt_pushes=cfg.corrupt_pushes,
            corrupt_every=cfg.corrupt_every,
            drop_after_frames=cfg.drop_after_frames,
            gap_every=cfg.gap_every,
            gap_size=cfg.gap_size,
            market_hours=cfg.market_hours,
        )
        self.host = cfg.host
        self.port = cfg.port
        #: The WebSocket gateway's port (bound once started), or None without a gateway.
        self.websocket_port: int | None = cfg.websocket_port
        #: OpenD's RSA key (``config.rsa_key``, read when the server starts); None: plain text.
        self.rsa: RsaKey | None = (
            RsaKey(cfg.rsa_key, source="SimConfig.rsa_key")
            if isinstance(cfg.rsa_key, bytes)
            else None
        )
        #: OpenD's rate limits and history quota (``config.rate_limits``, ``history_quota``).
        self.limits = ServerLimits(cfg)
        #: Requests received, by protocol id (over all connections, for tests and the CLI).
        self.requests: Counter[int] = Counter()
        #: InitConnects accepted, by what the session's frames are: ``"plain"``, ``"aes-cbc"``
        #: or ``"aes-ecb"``; and refused (``"refused"``).
        self.handshakes: Counter[str] = Counter()
        #: The recording being served (``config.replay``), else None.
        self.replay: Replay | None = Replay(self, cfg.replay) if cfg.replay is not None else None
        self._sessions: dict[int, Session] = {}
        #: The state kinds (quotes, order books, broker queues) derived from the tapes.
        self.states = StateBook(self)
        self._watchers: dict[str, set[Session]] = {}  # code -> connections with TICKER push
        self._encoders: dict[str, PushEncoder] = {}
        self._burst_locks: dict[str, anyio.Lock] = {}
        #: K-line and time-share builders fed by the same ticks, and their pushes
        self.series = SeriesFeed(self)
        self._tg: TaskGroup | None = None  # the server's own tasks (auto bursts)
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
    def market_hours(self) -> str:
        """``"open"``, ``"closed"`` or ``"real"``: when live ticks flow (see ``Faults``)."""
        return self.faults.market_hours

    @market_hours.setter
    def market_hours(self, value: Any) -> None:
        if value not in ("open", "closed", "real"):
            raise ValueError(f"market_hours must be 'open', 'closed' or 'real', got {value!r}")
        self.faults.market_hours = value

    @property
    def encrypted(self) -> bool:
        """True when the simulator has an RSA key and so requires encryption."""
        return self.config.rsa_key is not None

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
        if cfg.rsa_key is not None and self.rsa is None:
            self.rsa = await anyio.to_thread.run_sync(RsaKey.load, cfg.rsa_key)
        if cfg.state_file is not None:
            await self._load_state(cfg.state_file)
        listener = await anyio.create_tcp_listener(local_host=cfg.host, local_port=cfg.port)
        # The body's exception is re-raised after the task group, so callers see it as is
        # rather than wrapped in an ExceptionGroup.
        error: BaseException | None = None
        try:
            async with listener, websocket_gateway(self) as gateway:
                self.port = listener.extra(SocketAttribute.local_port)
                logger.info(
                    "OpenD simulator listening on %s:%d%s",
                    self.host,
                    self.port,
                    f" (encrypted: {self.rsa.size * 8}-bit RSA key, AES {cfg.aes_mode})"
                    if self.rsa is not None
                    else "",
                )
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    tg.start_soon(listener.serve, self._handle)
                    if gateway is not None:
                        tg.start_soon(gateway.serve)
                    if self.replay is not None:
                        self.replay.open()
                        tg.start_soon(self.replay.run)
                    else:
                        tg.start_soon(self._live_loop)
                    if cfg.state_file is not None and cfg.state_interval > 0:
                        tg.start_soon(self._save_loop, cfg.state_interval)
                    try:
                        yield self
                    except BaseException as exc:
                        error = exc
                    finally:
                        tg.cancel_scope.cancel()
        finally:
            if cfg.state_file is not None:  # also when a cancellation ends the block
                await self._final_save()
        logger.info("OpenD simulator on port %d stopped", self.port)
        if error is not None:
            raise error

    # ---- state file -----------------------------------------------------------------------

    async def _load_state(self, path: str | os.PathLike[str]) -> None:
        """Read the state file (if there is one yet), then write it: an unwritable path fails
        here, at start, not at the first save."""
        saved = await anyio.to_thread.run_sync(load_state, path)
        self.market.saved.update(saved)
        for code in self.config.codes:
            self.market.activate(code)
        try:
            await self.save_state()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot write the simulator state file {os.fspath(path)}: {exc}"
            ) from None
        if saved:
            logger.info("continuing %d securities from %s", len(saved), os.fspath(path))

    async def _final_save(self) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await self.save_state()
            except OSError as exc:
                path = self.config.state_file
                logger.error("cannot save the simulator state to %s: %s", path, exc)

    async def save_state(self) -> None:
        """Write every security's state to ``config.state_file`` now (atomically)."""
        path = self.config.state_file
        if path is None:
            raise ConfigurationError("this simulator has no state_file")
        states = self.market.snapshot()  # on the event loop: one consistent moment
        seed = self.config.seed
        await anyio.to_thread.run_sync(lambda: write_state(path, dump_state(seed, states)))

    async def _save_loop(self, interval: float) -> None:
        while True:
            await anyio.sleep(interval)
            try:
                await self.save_state()
            except OSError as exc:
                logger.warning("cannot save the simulator state: %s", exc)

    async def _handle(self, stream: SocketStream) -> None:
        if self.faults.refuse_connections:
            await stream.aclose()
            return
        conn_id = self._next_conn_id
        self._next_conn_id += 1
        aes_key = "".join(self._rng.choices("0123456789ABCDEF", k=16))
        if self.rsa is None:
            session = Session(self, stream, conn_id, aes_key)
        else:  # drawn only here, so plain-text runs keep their random sequence
            aes_iv = "".join(self._rng.choices("0123456789abcdef", k=16))
            session = Session(self, stream, conn_id, aes_key, aes_iv)
        self._sessions[conn_id] = session
        logger.debug("connection %d opened", conn_id)
        try:
            await session.run()
        except Exception:
            logger.exception("connection %d: simulator error", conn_id)

    async def serve_session(self, make: Callable[[int], Session]) -> None:
        """Run a connection accepted elsewhere (the WebSocket gateway) as one of this server's."""
        conn_id = self._next_conn_id
        self._next_conn_id += 1
        session = self._sessions[conn_id] = make(conn_id)
        logger.debug("connection %d opened (%s)", conn_id, type(session).__name__)
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

    def push_registered(self, session: Session, code: str) -> None:
        """A connection registered TICKER push for ``code``: start a replay or a burst."""
        replay = self.replay
        if replay is not None and code in replay.codes:
            replay.start()
        first = code not in session.registered
        session.registered.add(code)
        if first and self.config.burst > 0 and self._tg is not None:
            # It starts after the handler returned, so the reply is queued first; it runs in the
            # server's task group so that it completes for every watcher even if this one leaves.
            self._tg.start_soon(self._auto_burst, code)

    async def _auto_burst(self, code: str) -> None:
        cfg = self.config
        await self.burst(code, cfg.burst, ticks_per_push=cfg.burst_per_push)

    async def wait_room(self, code: str) -> None:
        """Wait until no connection watching ``code`` has more than the burst high water queued."""
        high_water = self.config.burst_high_water
        for session in tuple(self._watchers.get(code, ())):
            await session.outbox.wait_room(high_water)

    def watched_codes(self) -> list[str]:
        """Codes that at least one connection gets TICKER pushes for."""
        return sorted(code for code, watchers in self._watchers.items() if watchers)

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
            faults = self.faults
            trading = trading_markets(now, faults.market_hours)
            for sec in self.market.live():
                if sec.paused or (trading is not None and sec.market not in trading):
                    continue
                ticks = sec.generate(due, now, gap_every=faults.gap_every, gap_size=faults.gap_size)
                self.push_ticks(sec, ticks)

    def push_ticks(self, sec: SecurityState, ticks: list[qot_common_pb2.Ticker]) -> None:
        """Push ``ticks`` (one per message) to every connection registered for them.

        The K-line and time-share pushes the ticks make (folded into their bars and minutes)
        go out first, to every connection registered for those; then the states the ticks
        changed (quote, books, broker queue) to those registered for these.
        """
        self.series.on_ticks(sec, ticks)
        watchers = self._watchers.get(sec.code)
        if watchers and not self.faults.stall:
            encoder = self.encoder(sec)
            targets = tuple(watchers)
            for tick in ticks:
                body = encoder.body((tick.SerializeToString(),))
                digest = hashlib.sha1(body).digest()
                for session in targets:
                    session.push(body, digest)
        self.states.changed(sec.code)

    def skip_ticks(self, code: str, n: int) -> None:
        """Advance ``code``'s trade counter by ``n`` without storing or pushing ticks (a gap)."""
        self.market.skip_ticks(code, n)

    async def burst(self, code: str, n: int, *, ticks_per_push: int = 1) -> BurstResult:
        """Make ``n`` new ticks of ``code`` and push them as fast as possible.

        All ticks are generated, serialized and framed first; then each connection registered for
        ``code``'s TICKER push gets them in ~256 KiB writes, with backpressure (nothing is
        dropped). Returns once every byte went to the sockets. Live ticks for ``code`` pause
        meanwhile, and bursts of one code run one at a time, so sequences stay in order. The
        ticks are stored like live ones. Bursts ignore market hours but not the gap settings.
        """
        if n < 0 or ticks_per_push < 1:
            raise ValueError("n must be >= 0 and ticks_per_push >= 1")
        lock = self._burst_locks.setdefault(code, anyio.Lock())
        async with lock:
            return await self._burst(code, n, ticks_per_push)

    async def _burst(self, code: str, n: int, ticks_per_push: int) -> BurstResult:
        sec = self.market.security(code)
        encoder = self.encoder(sec)
        faults = self.faults
        started = time.perf_counter()
        sec.paused = True
        try:
            bodies: list[bytes] = []
            series: dict[Session, list[tuple[int, bytes]]] = {}
            batch = max(10_000 // ticks_per_push, 1) * ticks_per_push
            for offset in range(0, n, batch):
                made = sec.generate(
                    min(batch, n - offset), gap_every=faults.gap_every, gap_size=faults.gap_size
                )
                if self.series.active(code):  # K-line and time-share pushes of the same ticks
                    more = await self.series.burst_pushes(sec, made, ticks_per_push)
                    for session, items in more.items():
                        series.setdefault(session, []).extend(items)
                raw = [t.SerializeToString() for t in made]
                bodies += [
                    encoder.body(raw[i : i + ticks_per_push])
                    for i in range(0, len(raw), ticks_per_push)
                ]
                await anyio.lowlevel.checkpoint()
            digests = [hashlib.sha1(body).digest() for body in bodies]
            targets = () if self.faults.stall else tuple(self._watchers.get(code, ()))
            # Frames are per connection (serials; JSON and AES bodies too): made before the
            # first write, so encryption is part of the encoding time, not of the writes.
            work = [(session, await session.prepare_bulk(bodies, digests)) for session in targets]
            encoded = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for session, chunks in work:
                    tg.start_soon(session.send_bulk, chunks)
            if series and not self.faults.stall:
                async with anyio.create_task_group() as tg:
                    for session, items in series.items():
                        tg.start_soon(SeriesFeed.send, session, items, self.config.burst_high_water)
            written = time.perf_counter()
        finally:
            sec.paused = False
        self.states.changed(code)  # one state push after the burst: the state it ended in
        size = sum(len(c) for c, _ in work[0][1]) if work else 0
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

    # ---- state kinds (tests set them exactly) ---------------------------------------------

    def set_quote(self, code: str, **fields: Any) -> None:
        """Set fields of ``code``'s basic quote (:class:`aiofutu.Quote` names: ``last_price``,
        ``volume``, ``turnover``, ``update_time``, ... or BasicQot field names) and push it.

        The other fields keep their tape-derived values; the quote stands until the next tick
        of ``code``, which derives it from the tape again.
        """
        self.states.set_quote(code, **fields)

    def set_order_book(
        self,
        code: str,
        bids: Sequence[tuple[Any, ...]],
        asks: Sequence[tuple[Any, ...]],
        *,
        odd: bool = False,
        recv_time: tuple[str, float] | None = None,
    ) -> None:
        """Set ``code``'s order book exactly and push it, best level first: each level is
        ``(price, volume, orders)`` or ``(price, volume, orders, {order_id: volume})``.

        ``odd`` sets the odd-lot book (ORDER_BOOK_ODD); ``recv_time`` is ``(OpenD time string,
        Unix seconds)`` for the server receive times. It stands until the next tick of ``code``.
        """
        self.states.set_order_book(code, bids, asks, odd=odd, recv_time=recv_time)

    def set_broker_queue(
        self, code: str, bids: Sequence[tuple[Any, ...]], asks: Sequence[tuple[Any, ...]]
    ) -> None:
        """Set an HK code's broker queue exactly and push it: each entry is ``(id, name, pos)``
        or ``(id, name, pos, order_id, volume)``. It stands until the next tick of ``code``."""
        self.states.set_broker_queue(code, bids, asks)

    async def burst_books(self, code: str, n: int, *, odd: bool = False) -> StateBurst:
        """Push ``n`` order-book updates of ``code`` as fast as the sockets take them, with
        backpressure, to every connection registered for its book; returns once all is written.
        """
        return await self.states.burst_books(code, n, odd=odd)

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

    ``options`` are the other :class:`SimConfig` fields (``scenario="gaps"``, ``burst=500``,
    ``reply_delay``, ``unsub_min_age``, ``replay="ticks.parquet"``, ...).
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
