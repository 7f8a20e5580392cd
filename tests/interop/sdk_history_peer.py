"""The official SDK's history K-line, quota and market-state calls; run only as a subprocess.

``python sdk_history_peer.py '{"port": 11111, "code": "HK.00700", "other": "US.AAPL"}'``
drives an ``OpenQuoteContext`` through ``request_history_kline`` (all pages, ``max_count`` and
its page key, the default fields, a field subset), ``get_history_kl_quota`` and
``get_market_state``, and prints one JSON object per step on stdout.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def emit(step: str, **data: Any) -> None:
    print(json.dumps({"step": step, **data}, default=str), flush=True)


def frame(df: Any) -> dict[str, Any]:
    """A pandas frame as plain JSON: column order, dtypes and values (NaN as None)."""
    return {
        "columns": list(df.columns),
        "dtypes": {c: str(df[c].dtype) for c in df.columns},
        "rows": {c: [None if v != v else v for v in df[c].tolist()] for c in df.columns},
    }


def main() -> None:
    cfg = json.loads(sys.argv[1])
    import futu

    futu.set_futu_debug_model(False)
    from futu import KL_FIELD, RET_OK, KLType, OpenQuoteContext

    code, other = cfg["code"], cfg["other"]
    minute = {"start": "2024-01-02", "end": "2024-01-05", "ktype": KLType.K_1M}
    ctx = OpenQuoteContext(host="127.0.0.1", port=cfg["port"])
    try:
        ret, data, key = ctx.request_history_kline(code, **minute, max_count=None)
        emit("all_pages", ret=ret, frame=frame(data) if ret == RET_OK else data, key=key)
        ret, data, key = ctx.request_history_kline(code, **minute, max_count=500)
        more = key is not None
        emit("first_500", ret=ret, frame=frame(data) if ret == RET_OK else data, more=more)
        ret, data, key = ctx.request_history_kline(code, **minute, max_count=None, page_req_key=key)
        emit("rest", ret=ret, frame=frame(data) if ret == RET_OK else data, key=key)
        ret, data, key = ctx.request_history_kline(
            code, **minute, max_count=2500, page_req_key=None
        )
        emit("max_2500", ret=ret, rows=len(data) if ret == RET_OK else data, key=key)
        ret, data, key = ctx.request_history_kline(code, start="2024-01-01", end="2024-03-31")
        emit("daily", ret=ret, frame=frame(data) if ret == RET_OK else data, key=key)
        ret, data, key = ctx.request_history_kline(
            other,
            start="2024-01-01",
            end="2024-03-31",
            fields=[KL_FIELD.CLOSE, KL_FIELD.DATE_TIME, KL_FIELD.TRADE_VOL],
        )
        emit("fields", ret=ret, frame=frame(data) if ret == RET_OK else data)
        ret, data, key = ctx.request_history_kline(code, start="2024-02-01", end="2024-01-01")
        emit("reversed", ret=ret, msg=str(data) if ret != RET_OK else len(data))
        ret, data = ctx.get_history_kl_quota(get_detail=True)
        emit("quota", ret=ret, data=data)
        ret, data = ctx.get_market_state([code, other, code])
        emit("market_state", ret=ret, frame=frame(data) if ret == RET_OK else data)
    finally:
        ctx.close()
    emit("done")


if __name__ == "__main__":
    main()
