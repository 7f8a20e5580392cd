"""The official SDK's K-line and time-share calls against aiofutu's simulator (a subprocess).

``python sdk_series_peer.py '{"port": 11111, "code": "HK.00700"}'`` subscribes K_1M and RT_DATA
with an ``OpenQuoteContext``, reports ``get_cur_kline`` and ``get_rt_data``, then, after its
``ready`` line (the test pushes ticks of two new minutes), what ``CurKlineHandlerBase`` and
``RTDataHandlerBase`` received. One JSON object per line on stdout.
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
    return {"columns": list(df.columns), "rows": {c: df[c].tolist() for c in df.columns}}


def main() -> None:
    cfg = json.loads(sys.argv[1])
    import futu

    futu.set_futu_debug_model(False)
    import pandas as pd
    from futu import (
        RET_OK,
        CurKlineHandlerBase,
        KLType,
        OpenQuoteContext,
        RTDataHandlerBase,
        SubType,
    )

    code = cfg["code"]
    bars: list[Any] = []
    points: list[Any] = []
    errors: list[str] = []
    enough = threading.Event()

    def note() -> None:
        closed_bar = len({t for d in bars for t in d["time_key"]}) >= 3
        closed_min = len({t for d in points for t in d["time"]}) >= 3
        if closed_bar and closed_min:
            enough.set()

    class Bars(CurKlineHandlerBase):  # type: ignore[misc]
        def on_recv_rsp(self, rsp_pb: Any) -> Any:
            ret, data = super().on_recv_rsp(rsp_pb)
            if ret != RET_OK:
                errors.append(str(data))
            else:
                bars.append(data)
                note()
            return ret, data

    class Points(RTDataHandlerBase):  # type: ignore[misc]
        def on_recv_rsp(self, rsp_pb: Any) -> Any:
            ret, data = super().on_recv_rsp(rsp_pb)
            if ret != RET_OK:
                errors.append(str(data))
            else:
                points.append(data)
                note()
            return ret, data

    ctx = OpenQuoteContext(host="127.0.0.1", port=cfg["port"])
    try:
        ctx.set_handler(Bars())
        ctx.set_handler(Points())
        ret, data = ctx.get_cur_kline(code, 10, KLType.K_1M)
        emit("unsubscribed", ret=ret, msg=str(data) if ret != RET_OK else len(data))
        ret, msg = ctx.subscribe([code], [SubType.K_1M, SubType.RT_DATA])
        emit("subscribe", ret=ret, msg=msg)
        ret, data = ctx.get_cur_kline(code, 1000, KLType.K_1M)
        emit("cur_kline", ret=ret, frame=frame(data) if ret == RET_OK else str(data))
        ret, data = ctx.get_rt_data(code)
        emit("rt_data", ret=ret, frame=frame(data) if ret == RET_OK else str(data))
        emit("ready")
        ok = enough.wait(20)
        time.sleep(0.3)
        emit(
            "pushes",
            ok=ok,
            errors=errors,
            kline=frame(pd.concat(bars, ignore_index=True)) if bars else None,
            rt=frame(pd.concat(points, ignore_index=True)) if points else None,
        )
    finally:
        ctx.close()
    emit("done")


if __name__ == "__main__":
    main()
