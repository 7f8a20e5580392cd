"""One module per quote kind: the models, the sans-IO decoders and request builders, and the
polars frames of basic quotes (:mod:`.basic`), order books (:mod:`.orderbook`) and broker
queues (:mod:`.broker`).

The client's verbs and streams are wired onto these later; nothing here does I/O.
"""

from __future__ import annotations

__all__ = ()
