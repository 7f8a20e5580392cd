"""``aiofutu snapshot CODE...``: the market snapshot of any number of codes (3203).

``table`` prints the headline figures; ``csv`` and ``parquet`` carry the SDK's 142 columns of
``get_market_snapshot`` in its order; ``json`` is one line per snapshot with every field of
:class:`aiofutu.quotes.snapshot.Snapshot`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from ._commands import _COMMANDS
from ._config import UsageError
from ._link import add_link_flags, open_client

if TYPE_CHECKING:
    import argparse

    from ..quotes.snapshot import Snapshot

__all__ = ("register",)

FORMATS = ("table", "csv", "json", "parquet")


def register(sub: Any) -> None:
    """Add ``snapshot`` to the subcommands."""
    p = sub.add_parser(
        "snapshot",
        help="the market snapshot of CODE... (get_market_snapshot; no subscription)",
        description="Fetch the snapshot of every CODE (any number: more than 400 are split into "
        "concurrent requests) and print or write it.",
    )
    p.add_argument("codes", nargs="+", metavar="CODE", help="e.g. HK.00700 US.AAPL")
    p.add_argument(
        "--format", choices=FORMATS, default="table",
        help="table: the headline figures; csv and parquet: the SDK's 142 columns in its order; "
        "json: one line per snapshot with every field (parquet needs --out; default %(default)s)",
    )  # fmt: skip
    p.add_argument("--out", metavar="FILE", help="write to FILE (default: stdout)")
    add_link_flags(p)
    _COMMANDS["snapshot"] = _snapshot


def _price(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}".rstrip("0").rstrip(".")


def _table(snaps: list[Snapshot]) -> str:
    lines = [
        f"{'code':<12} {'name':<24} {'last':>10} {'prev close':>10} {'change%':>8} "
        f"{'volume':>14} {'turnover':>18} {'lot':>6} update_time"
    ]
    for s in snaps:
        prev = s.prev_close_price
        change = f"{(s.last_price - prev) * 100 / prev:+.2f}" if prev else "-"
        lines.append(
            f"{s.code:<12} {s.name[:24]:<24} {_price(s.last_price):>10} {_price(prev):>10} "
            f"{change:>8} {s.volume:>14} {s.turnover:>18.2f} {s.lot_size:>6} {s.update_time}"
        )
    return "\n".join(lines) + "\n"


async def _snapshot(args: argparse.Namespace) -> None:
    if args.format == "parquet" and not args.out:
        raise UsageError("--format parquet needs --out FILE")
    frame_wanted = args.format in ("csv", "parquet")
    if frame_wanted:
        from ..frames import _polars

        _polars()  # MissingDependency before connecting
    async with open_client(args) as client:
        snaps = await client.get_market_snapshot(args.codes)
    _write(snaps, args.format, args.out)


def _write(snaps: list[Snapshot], fmt: str, out: str | None) -> None:
    try:
        if fmt in ("csv", "parquet"):
            from ..quotes._snapshot_frame import snapshots_to_polars

            df = snapshots_to_polars(snaps)
            if fmt == "parquet":
                assert out is not None  # checked before connecting
                df.write_parquet(out)
            elif out:
                df.write_csv(out)
            else:
                sys.stdout.write(df.write_csv())
            return
        text = (
            _table(snaps) if fmt == "table" else "".join(s.model_dump_json() + "\n" for s in snaps)
        )
        if not out:
            sys.stdout.write(text)
            return
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:  # one line naming the file, not a raw errno
        raise OSError(exc.errno, f"cannot write {out!r}: {exc.strerror or exc}") from None
