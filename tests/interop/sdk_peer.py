"""The official SDK (futu-api) as a peer of aiofutu's simulator; run only as a subprocess.

``python sdk_peer.py '{"port": 11111, "code": "HK.00700", "other": "US.AAPL", "burst": 500,
"per_push": 1}'`` (plus ``"rsa_file": PATH`` for an encrypted connection, and ``"encrypt": false``
to set only the key file) drives an ``OpenQuoteContext`` through subscribe, get_rt_ticker, pushes,
query_subscription and unsubscribe, and reports every result as one JSON object per line on
stdout. After the ``ready`` line the test sets off a burst of ``burst`` ticks; the peer waits
for them in its ``TickerHandlerBase``. Importing ``futu`` writes under $HOME and takes over
SIGINT, which is why this never runs inside pytest's process.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any


def emit(step: str, **data: Any) -> None:
    print(json.dumps({"step": step, **data}, default=str), flush=True)


def frame(df: Any) -> dict[str, Any]:
    """A pandas frame as plain JSON: column order, dtypes and values."""
    return {
        "columns": list(df.columns),
        "dtypes": {c: str(df[c].dtype) for c in df.columns},
        "rows": {c: df[c].tolist() for c in df.columns},
    }


def main() -> None:
    cfg = json.loads(sys.argv[1])
    import futu

    futu.set_futu_debug_model(False)
    import pandas as pd
    from futu import RET_OK, OpenQuoteContext, SubType, SysConfig, TickerHandlerBase

    if cfg.get("rsa_file"):
        SysConfig.set_init_rsa_file(cfg["rsa_file"])  # InitConnect is RSA-encrypted from now on
        SysConfig.enable_proto_encrypt(cfg.get("encrypt", True))  # and AES after it

    code, other = cfg["code"], cfg["other"]
    expected = 1 + cfg["burst"]  # the first push (latest tick) and the burst
    pushed: list[Any] = []
    errors: list[str] = []
    calls = [0]
    complete = threading.Event()

    class Handler(TickerHandlerBase):  # type: ignore[misc]
        def on_recv_rsp(self, rsp_pb: Any) -> Any:
            ret, data = super().on_recv_rsp(rsp_pb)
            if ret != RET_OK:
                errors.append(str(data))
                return ret, data
            calls[0] += 1
            pushed.append(data)
            if sum(len(d) for d in pushed) >= expected:
                complete.set()
            return ret, data

    ctx = OpenQuoteContext(host="127.0.0.1", port=cfg["port"])
    try:
        ctx.set_handler(Handler())
        ret, msg = ctx.subscribe([code], [SubType.TICKER])
        emit("subscribe", ret=ret, msg=msg)
        ret, data = ctx.get_rt_ticker(code, 1000)
        emit("rt_ticker", ret=ret, frame=frame(data) if ret == RET_OK else data)
        ret, data = ctx.get_rt_ticker(code, 5000)  # the SDK sends it as is
        emit("rt_ticker_5000", ret=ret, rows=len(data) if ret == RET_OK else data)
        ret, data = ctx.get_rt_ticker(code, 0)
        emit("rt_ticker_0", ret=ret, msg=data if ret != RET_OK else len(data))
        ret, data = ctx.query_subscription()
        emit("query", ret=ret, data=data)
        ret, msg = ctx.subscribe([other], [SubType.TICKER])  # the quota is 1
        emit("quota", ret=ret, msg=msg)
        emit("ready")
        ok = complete.wait(20)
        time.sleep(0.2)  # anything beyond the expected rows would show up now
        merged = pd.concat(pushed, ignore_index=True) if pushed else None
        emit(
            "pushes",
            ok=ok,
            calls=calls[0],
            errors=errors,
            frame=frame(merged) if merged is not None else None,
        )
        ret, msg = ctx.unsubscribe([code], [SubType.TICKER])
        emit("unsubscribe", ret=ret, msg=msg)
        ret, data = ctx.query_subscription()
        emit("query_after", ret=ret, data=data)
        ret, data = ctx.get_rt_ticker(code, 10)
        emit("rt_unsubscribed", ret=ret, msg=data if ret != RET_OK else len(data))
        ret, data = ctx.get_global_state()
        emit("global_state", ret=ret, data=data)
        time.sleep(cfg.get("linger", 1.5))  # the async RegQotPush and a KeepAlive go out
    finally:
        ctx.close()
    emit("done")


if __name__ == "__main__":
    main()
