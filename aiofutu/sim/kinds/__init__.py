"""Pure builders of the simulator's state kinds, each derived from one security's tick tape so
that the kinds agree: the basic quote (:mod:`.basic`), the order book (:mod:`.orderbook`) and
the HK broker queue (:mod:`.broker`). They take plain inputs (tick-like records, a seed) and
return protobuf messages or encoded bodies; the server wires them to sessions.
"""

from __future__ import annotations

__all__ = ()
