"""The official SDK's snapshot and static-info calls against aiofutu's simulator (a subprocess).

``python sdk_snapshot_peer.py '{"port": 11111, "codes": [...], "many": [...]}'`` runs
``get_market_snapshot`` and ``get_stock_basicinfo`` through an ``OpenQuoteContext`` and prints
one JSON object per step. Importing ``futu`` writes under $HOME and takes over SIGINT, which is
why this never runs inside pytest's process.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any


def emit(step: str, **data: Any) -> None:
    print(json.dumps({"step": step, **data}, default=str), flush=True)


def cell(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def table(df: Any) -> dict[str, Any]:
    return {
        "columns": list(df.columns),
        "rows": [
            [cell(x) for x in r] for r in zip(*(df[c].tolist() for c in df.columns), strict=True)
        ],
    }


def main() -> None:
    cfg = json.loads(sys.argv[1])
    import futu

    futu.set_futu_debug_model(False)
    from futu import RET_OK, OpenQuoteContext

    def result(name: str, ret: int, data: Any) -> None:
        emit(name, ret=ret, data=table(data) if ret == RET_OK else str(data))

    ctx = OpenQuoteContext(host="127.0.0.1", port=cfg["port"])
    try:
        result("snapshot", *ctx.get_market_snapshot(cfg["codes"]))
        result("snapshot_many", *ctx.get_market_snapshot(cfg["many"]))  # sent as is (> 400)
        result("snapshot_unknown", *ctx.get_market_snapshot(["HK.00700", "HK.99999"]))
        result("basicinfo_hk", *ctx.get_stock_basicinfo("HK", "STOCK"))
        result("basicinfo_us_idx", *ctx.get_stock_basicinfo("US", "IDX"))
        result("basicinfo_codes", *ctx.get_stock_basicinfo("HK", "STOCK", cfg["codes"]))
    finally:
        ctx.close()
    emit("done")


if __name__ == "__main__":
    main()
