"""The simulator's configuration: one frozen dataclass, with named scenarios folded in."""

from __future__ import annotations

import dataclasses
import math
import os
import ssl
from dataclasses import dataclass
from typing import Any, Literal, cast

from ..codes import parse_code
from ._scenarios import MARKET_HOURS, SCENARIOS, MarketHours
from ._universe import Listing, SecuritiesSpec, listings

__all__ = ("AES_MODES", "AesMode", "SimConfig")

#: ``"auto"``: as the client asks in InitConnect (packetEncAlgo 2 gives AES-CBC; 0 or nothing
#: gives OpenD's default, its ECB variant); ``"cbc"`` / ``"ecb"``: that mode whatever was asked.
AesMode = Literal["auto", "cbc", "ecb"]
AES_MODES: tuple[str, ...] = ("auto", "cbc", "ecb")
QuoteRight = Literal["LV1", "LV2", "SF"]

_MIB = 1024 * 1024


@dataclass(frozen=True)
class SimConfig:
    """Everything a :class:`Simulator` is built from (runtime knobs live in :class:`Faults`).

    ``scenario`` names a preset of :data:`~aiofutu.sim.SCENARIOS`; it fills in the fields
    that are still at their defaults, so explicit values win.
    """

    host: str = "127.0.0.1"
    #: 0 picks a free port; read the bound one from ``Simulator.port``.
    port: int = 0
    #: Seeds every security's random walk, so prices and volumes repeat run to run.
    seed: int = 1
    #: Live ticks per second per active security; 0 = no live flow (only bursts).
    tick_rate: float = 50.0
    #: Securities that get live ticks from the start (subscribed ones are added on demand);
    #: they are part of the security list even when the default one does not have them.
    codes: tuple[str, ...] = ("HK.00700", "US.AAPL")
    #: Securities the simulator knows besides :data:`~aiofutu.sim.DEFAULT_UNIVERSE` and
    #: ``codes``: codes (``("HK.01024",)``), or a mapping of code to a name or a
    #: :class:`~aiofutu.sim.Listing`. Requests naming any other code are refused, as OpenD
    #: refuses an unknown stock. Stored as ``((code, Listing), ...)``.
    securities: SecuritiesSpec = ()
    #: Accept every well-formed code, making up a security for an unknown one (benchmarks that
    #: subscribe thousands of synthetic codes). OpenD itself refuses unknown securities.
    allow_any_code: bool = False
    #: A JSON file that keeps the tape across restarts: each security's trade counter, price
    #: and recent ticks are loaded from it at start and saved to it (atomically) every
    #: ``state_interval`` seconds and at stop, so a restarted simulator continues its counters
    #: instead of starting over. None: every start is a new market.
    state_file: str | os.PathLike[str] | None = None
    #: Seconds between saves of ``state_file`` while running (0: only at start and stop).
    state_interval: float = 5.0
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
    #: US sequences carry only the trade's second (low 32 bits 0), as in OpenD's US samples
    #: (protocol notes §11), so trades of one second share a sequence; they always differ in a
    #: trade field. Other markets keep the trade counter. The ``us-seconds`` scenario.
    us_second_sequences: bool = False
    server_ver: int = 1011
    server_build_no: int = 7108
    login_user_id: int = 12_345_678
    #: A connection whose unsent replies and live pushes exceed this many bytes is dropped.
    max_push_backlog: int = 64 * _MIB
    #: A burst waits while more than this many bytes are queued for a connection.
    burst_high_water: int = 1 * _MIB
    #: A preset of :data:`~aiofutu.sim.SCENARIOS` (``"steady"``, ``"gaps"``, ``"drop"``, ...).
    scenario: str = "steady"
    #: When live ticks flow: ``"open"`` (always), ``"closed"`` (never) or ``"real"`` (sessions).
    market_hours: MarketHours = "open"
    #: When > 0, each connection's first TICKER push registration of a code is followed by this
    #: many ticks of that code as fast as possible (``burst_per_push`` ticks per push message).
    burst: int = 0
    burst_per_push: int = 1
    #: Every ``gap_every``-th tick of a security is preceded by ``gap_size`` trades that never
    #: appear anywhere (sequence counters jump). 0 = no gaps.
    gap_every: int = 0
    gap_size: int = 1
    #: Close each connection once it was sent this many frames (0 = never).
    drop_after_frames: int = 0
    #: Initial values of the ``Faults`` counters of the same names.
    corrupt_replies: int = 0
    corrupt_pushes: int = 0
    #: Every N-th push frame of each connection carries a wrong SHA1 (0 = never).
    corrupt_every: int = 0
    #: A recording (``aiofutu record`` Parquet file) to serve as live pushes instead of the
    #: synthetic flow; it starts at the first TICKER push registration of a recorded code.
    replay: str | os.PathLike[str] | None = None
    #: Replay pacing: 1 = the recording's own timing, 10 = ten times faster, 0 = no waiting.
    speed: float = 1.0
    #: OpenD's ``rsa_private_key``: a PEM file path or PEM bytes. With a key the simulator
    #: requires encryption: InitConnect must be RSA-encrypted with this key (anything else is
    #: refused with a plain-text retType=-1 reply, then the connection is closed) and every later
    #: frame, both ways, is AES-encrypted with the session key it hands out. None: plain text.
    rsa_key: str | os.PathLike[str] | bytes | None = None
    #: The AES mode of encrypted sessions (:data:`AesMode`); only with ``rsa_key``.
    aes_mode: AesMode = "auto"
    #: Also serve OpenD's WebSocket gateway (the npm ``futu-api`` SDK's transport) on this port
    #: of ``host`` (0 picks a free one; read it from ``Simulator.websocket_port``); None: no
    #: gateway. Needs ``wsproto`` (``pip install "aiofutu[ws]"``).
    websocket_port: int | None = None
    #: The gateway's key (OpenD's ``websocket_key_md5`` is its MD5): Init must carry its MD5 hex
    #: digest, else it gets no answer, as from OpenD. None: any Init is accepted.
    websocket_key: str | None = None
    #: A WebSocket message larger than this closes its connection (1009 message too big).
    websocket_max_message: int = 1 * _MIB
    #: Enforce OpenD's request-rate limits (60 history first pages and 60 snapshots, 10
    #: market-state requests per ``rate_window`` seconds, sliding): a request over one is
    #: refused. On by default, as in OpenD; the client keeps them itself, so it never hits them.
    rate_limits: bool = True
    #: The rate limits' window in seconds (OpenD: 30); tests shorten it.
    rate_window: float = 30.0
    #: History K-line quota: distinct securities per ``history_quota_days`` (OpenD: 100 to 2000).
    history_quota: int = 100
    history_quota_days: float = 30.0
    #: Serve the gateway over TLS (``wss://``) with this server-side context (its certificate
    #: loaded); None: plain ``ws://``. Only with ``websocket_port``.
    websocket_ssl: ssl.SSLContext | None = None
    #: The account's quote right, which sets the order-book depth per market (fact sheet 4.4:
    #: ``"LV2"`` HK 10, US 60, A-shares 5 levels; ``"SF"`` the HK full book, 40 levels, with
    #: order details where the subscription asks (isSubOrderBookDetail) and broker order ids;
    #: ``"LV1"`` US 1 level, and no HK book or queue).
    quote_right: QuoteRight = "LV2"

    def __post_init__(self) -> None:
        preset = SCENARIOS.get(self.scenario)
        if preset is None:
            names = ", ".join(SCENARIOS)
            raise ValueError(f"unknown scenario {self.scenario!r}; choose one of: {names}")
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name, value in preset.items():
            if getattr(self, name) == defaults[name]:
                object.__setattr__(self, name, value)
        object.__setattr__(self, "codes", tuple(self.codes))
        object.__setattr__(self, "securities", listings(self.securities))
        self._validate()

    def _validate(self) -> None:
        if self.tick_rate < 0:
            raise ValueError("tick_rate must be >= 0")
        if self.max_ticks < 1:
            raise ValueError("max_ticks must be >= 1")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be in 0..65535")
        if self.market_hours not in MARKET_HOURS:
            raise ValueError(
                f"market_hours must be one of {MARKET_HOURS}, got {self.market_hours!r}"
            )
        if self.burst_per_push < 1 or self.gap_size < 1:
            raise ValueError("burst_per_push and gap_size must be >= 1")
        for name in (
            "reply_delay",
            "unsub_min_age",
            "sub_quota",
            "burst",
            "gap_every",
            "drop_after_frames",
            "corrupt_replies",
            "corrupt_pushes",
            "corrupt_every",
            "speed",
            "state_interval",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for code in self.codes:
            parse_code(code)
        if not math.isfinite(self.state_interval):
            raise ValueError(f"state_interval must be finite, got {self.state_interval!r}")
        state = self.state_file
        if state is not None and not isinstance(state, (str, os.PathLike)):
            raise ValueError(f"state_file must be a file path, got {state!r}")
        if state is not None and self.replay is not None:
            raise ValueError("state_file does not go with replay (a replay serves recorded ticks)")
        if self.aes_mode not in AES_MODES:
            raise ValueError(f"aes_mode must be one of {AES_MODES}, got {self.aes_mode!r}")
        key = self.rsa_key
        if key is not None and not isinstance(key, (str, bytes, os.PathLike)):
            raise ValueError(f"rsa_key must be a PEM file path or PEM bytes, got {key!r}")
        if self.aes_mode != "auto" and key is None:
            raise ValueError(f"aes_mode={self.aes_mode!r} needs rsa_key (without a key, no AES)")
        if self.quote_right not in ("LV1", "LV2", "SF"):
            raise ValueError(f"quote_right must be LV1, LV2 or SF, got {self.quote_right!r}")
        self._validate_websocket()

    def _validate_websocket(self) -> None:
        port = self.websocket_port
        if port is not None and not (isinstance(port, int) and 0 <= port <= 65535):
            raise ValueError(f"websocket_port must be in 0..65535 or None, got {port!r}")
        key = self.websocket_key
        if key is not None and not isinstance(key, str):
            raise ValueError(f"websocket_key must be a string, got {type(key).__name__}")
        if key is not None and port is None:
            raise ValueError("websocket_key needs websocket_port (the key is the gateway's)")
        if not 0 < self.rate_window < math.inf:
            raise ValueError(f"rate_window must be a positive number, got {self.rate_window!r}")
        if self.history_quota < 0 or not self.history_quota_days > 0:
            raise ValueError("history_quota must be >= 0 and history_quota_days > 0")
        if self.websocket_max_message < 64:
            raise ValueError("websocket_max_message must be >= 64 bytes")
        tls = self.websocket_ssl
        if tls is not None and not isinstance(tls, ssl.SSLContext):
            raise ValueError(f"websocket_ssl must be an ssl.SSLContext, got {tls!r}")
        if tls is not None and port is None:
            raise ValueError("websocket_ssl needs websocket_port (TLS is the gateway's)")

    def security_list(self) -> dict[str, Listing]:
        """``securities`` as a mapping of code to :class:`~aiofutu.sim.Listing`."""
        return dict(cast("tuple[tuple[str, Listing], ...]", self.securities))

    def changed(self) -> dict[str, Any]:
        """The fields that differ from the defaults (for a start-up log line)."""
        changed = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default and f.name not in ("host", "port")
        }
        if isinstance(changed.get("rsa_key"), bytes):
            changed["rsa_key"] = "<PEM bytes>"  # never a private key in a log line
        if changed.get("websocket_key"):
            changed["websocket_key"] = "<set>"
        return changed
