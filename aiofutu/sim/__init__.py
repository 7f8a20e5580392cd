"""An OpenD simulator: a real TCP server that speaks the quote protocol, for tests and demos.

>>> async with sim.serve(tick_rate=0) as server:          # doctest: +SKIP
...     async with aiofutu.connect(server.host, server.port) as client:
...         ...
...     await server.burst("HK.00700", n=200_000)

It answers InitConnect, KeepAlive, GetGlobalState, Qot_Sub, Qot_RegQotPush, Qot_GetSubInfo and
Qot_GetTicker like OpenD (including the one-minute unsubscribe rule, the subscription quota,
the first-push duplicate and the refusal of unknown securities: it knows the real codes of
``DEFAULT_UNIVERSE`` plus ``securities=``), pushes Qot_UpdateTicker, plays named scenarios
(``SCENARIOS``: bursts, market hours, gaps, a slow server, dropped connections, corrupt frames,
an exhausted quota), injects faults on demand (``server.faults``) and replays recordings made
by ``aiofutu record``.
With an RSA key (``serve(rsa_key="key.pem")``, ``aiofutu sim --rsa-key key.pem``; make one with
``aiofutu keygen``) it requires encrypted connections, as an OpenD configured with
``rsa_private_key`` does: RSA InitConnect, then AES-CBC or OpenD's AES-ECB variant
(``aes_mode``) on every frame both ways. With ``state_file=`` (``aiofutu sim --state FILE``)
it keeps its tape across restarts: trade counters and prices continue.
"""

from __future__ import annotations

from ._config import SimConfig
from ._market import SecurityState, SimMarket, market_states, trading_markets
from ._replay import Replay, ticker_to_pb
from ._scenarios import MARKET_HOURS, SCENARIOS, ErrCode, Faults, MarketHours
from ._server import BurstResult, Simulator, StateBurst, run_forever, serve
from ._universe import DEFAULT_UNIVERSE, Listing

__all__ = (
    "DEFAULT_UNIVERSE",
    "MARKET_HOURS",
    "SCENARIOS",
    "BurstResult",
    "ErrCode",
    "Faults",
    "Listing",
    "MarketHours",
    "Replay",
    "SecurityState",
    "SimConfig",
    "SimMarket",
    "Simulator",
    "StateBurst",
    "market_states",
    "run_forever",
    "serve",
    "ticker_to_pb",
    "trading_markets",
)
