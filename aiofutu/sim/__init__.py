"""An OpenD simulator: a real TCP server that speaks the quote protocol, for tests and demos.

>>> async with sim.serve(tick_rate=0) as server:          # doctest: +SKIP
...     async with aiofutu.connect(server.host, server.port) as client:
...         ...
...     await server.burst("HK.00700", n=200_000)

It answers InitConnect, KeepAlive, GetGlobalState, Qot_Sub, Qot_RegQotPush, Qot_GetSubInfo and
Qot_GetTicker like OpenD (including the one-minute unsubscribe rule, the subscription quota and
the first-push duplicate), pushes Qot_UpdateTicker, and injects faults on demand.
"""

from __future__ import annotations

from ._market import SecurityState, SimMarket, market_states
from ._scenarios import ErrCode, Faults
from ._server import BurstResult, SimConfig, Simulator, run_forever, serve

__all__ = (
    "BurstResult",
    "ErrCode",
    "Faults",
    "SecurityState",
    "SimConfig",
    "SimMarket",
    "Simulator",
    "market_states",
    "run_forever",
    "serve",
)
