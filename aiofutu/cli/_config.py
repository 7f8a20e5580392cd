"""The simulator's command-line flags and the argparse types they share with the other commands.

Its own module so that the subcommands (``_commands``) and the parser (``_main``) both use it
without importing each other.
"""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


class UsageError(Exception):
    """A bad command line: one line on stderr, exit status 2."""


def _number(low: float = 0.0, *, above: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite float ``>= low`` (``> low`` with ``above``); nan/inf refused."""

    def number(text: str) -> float:
        value = float(text)  # ValueError: argparse's "invalid float value"
        if not math.isfinite(value) or value < low or (above and value == low):
            bound = f"{'>' if above else '>='} {low:g}"
            raise argparse.ArgumentTypeError(f"must be a finite number {bound}, got {text!r}")
        return value

    number.__name__ = "float"
    return number


def _count(low: int) -> Callable[[str], int]:
    """An argparse type: an int ``>= low``."""

    def count(text: str) -> int:
        value = int(text)  # ValueError: argparse's "invalid int value"
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}")
        return value

    count.__name__ = "int"
    return count


def _sim_config(args: argparse.Namespace, **fixed: Any) -> Any:
    from ..sim import SimConfig

    options: dict[str, Any] = {}
    for field in _SIM_FIELDS:
        value = getattr(args, field, None)
        if value is not None and value is not False:  # only what was given: presets fill in
            options[field] = value
    if "codes" in options:
        options["codes"] = tuple(c for c in options["codes"].split(",") if c)
    options.update(fixed)
    try:
        return SimConfig(**options)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


#: sim flags that map one to one onto SimConfig fields: (flag, field, type, metavar, help)
_SIM_FLAGS: tuple[tuple[str, str, Any, str, str], ...] = (
    ("--codes", "codes", str, "CODES", "comma-separated codes with live ticks from the start"),
    ("--seed", "seed", int, "N", "seed of prices and volumes (default 1)"),
    ("--rate", "tick_rate", _number(), "N", "live ticks per second per code (default 50; 0: none)"),
    ("--burst", "burst", int, "N", "N ticks as fast as possible after each push registration"),
    ("--burst-per-push", "burst_per_push", int, "K", "ticks per push message in a burst"),
    ("--gap-every", "gap_every", int, "N", "skip trades before every N-th tick (gaps)"),
    ("--gap-size", "gap_size", int, "N", "trades skipped at each gap (default 1)"),
    ("--reply-delay", "reply_delay", _number(), "S", "seconds before every reply (a slow OpenD)"),
    ("--drop-after-frames", "drop_after_frames", int, "N", "close connections after N frames"),
    ("--corrupt-replies", "corrupt_replies", int, "N", "the next N replies get a bad SHA1"),
    ("--corrupt-pushes", "corrupt_pushes", int, "N", "the next N pushes get a bad SHA1"),
    ("--corrupt-every", "corrupt_every", int, "N", "every N-th push gets a bad SHA1"),
    ("--sub-quota", "sub_quota", int, "N", "subscription quota (default 1000; 0 refuses all)"),
    ("--unsub-min-age", "unsub_min_age", _number(), "S", "seconds before unsubscribing"),
    ("--max-ticks", "max_ticks", int, "N", "ticks kept per code for get_rt_ticker"),
    ("--keepalive-interval", "keepalive_interval", _count(1), "S", "keepAliveInterval"),
    ("--replay", "replay", str, "FILE", "serve a recording (aiofutu record), not random ticks"),
    ("--speed", "speed", _number(), "X", "replay speed: 1 = as recorded, 10 = 10x, 0 = no waiting"),
    ("--rsa-key", "rsa_key", str, "FILE", "OpenD's RSA private key: require encryption"),
    ("--state", "state_file", str, "FILE", "keep the tape in FILE across restarts (JSON)"),
    ("--websocket-port", "websocket_port", int, "PORT", "also serve OpenD's WebSocket gateway"),
    ("--websocket-key", "websocket_key", str, "KEY", "the gateway's key (Init sends its MD5)"),
)
_SIM_FIELDS = (
    *(f[1] for f in _SIM_FLAGS),
    "scenario",
    "market_hours",
    "hp_volume",
    "aes_mode",
    "quote_right",
)


def _sim_help(text: str, field: str) -> str:
    """A sim flag's help with SimConfig's default (the --scenario presets change some)."""
    from ..sim import SimConfig

    if "default" in text:
        return text
    value = SimConfig.__dataclass_fields__[field].default
    if isinstance(value, tuple):
        value = ",".join(value)
    shown = "none" if value is None else f"{value:g}" if isinstance(value, float) else value
    return f"{text} (default {shown})"
