"""The simulator process of the benchmarks: ``python -m benchmarks.sim_proc``.

Runs ``aiofutu.sim.serve(port=0, tick_rate=0)`` on loopback, with OpenD's WebSocket gateway
beside the TCP port (a burst goes to every registered connection, on either transport), reports
both ports, then takes one command per line on stdin:

``burst CODE N TICKS_PER_PUSH``
    push ``N`` new ticks of ``CODE`` to every connection registered for them, and answer
    ``done`` (with the simulator's own timings) once every byte was handed to the sockets.
``books CODE N``
    push ``N`` order-book updates of ``CODE`` (``Simulator.burst_books``) and answer ``done``.
``ping``
    answer ``pong``.
``quit`` (or end of input)
    stop.

With ``--rsa-key FILE`` it requires encrypted connections (``--aes-mode``: ``auto``, ``cbc`` or
``ecb``), and the bursts' frames are encrypted per connection before the first write.
``--allow-any-code`` makes every well-formed code a security (the snapshot rows ask for 400),
and ``--max-ticks`` sets the tape length of each.

Answers are ``@@bench {json}`` lines (see ``benchmarks._common``). Timestamps are
``time.monotonic()``, which every process of the machine shares.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import anyio
import anyio.to_thread

from aiofutu import sim

from ._common import emit, now


async def _serve(seed: int, rsa_key: str, aes_mode: str, extra: dict[str, Any]) -> None:
    crypto: dict[str, Any] = {"rsa_key": rsa_key, "aes_mode": aes_mode} if rsa_key else {}
    async with sim.serve(
        port=0, seed=seed, tick_rate=0, websocket_port=0, **crypto, **extra
    ) as server:
        emit("ready", port=server.port, websocket_port=server.websocket_port)
        while True:
            line = await anyio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
            words = line.split()
            if not words or words[0] == "quit":
                return
            if words[0] == "ping":
                emit("pong")
                continue
            if words[0] == "books" and len(words) == 3:  # order-book updates (state kinds)
                t_cmd = now()
                books = await server.burst_books(words[1], int(words[2]))
                emit(
                    "done",
                    code=words[1],
                    updates=books.updates,
                    connections=books.connections,
                    bytes_per_connection=books.bytes_per_connection,
                    encode_s=books.encode_seconds,
                    write_s=books.write_seconds,
                    t_cmd=t_cmd,
                    t_write_start=t_cmd + books.encode_seconds,
                    t_done=now(),
                )
                continue
            if words[0] != "burst" or len(words) != 4:
                emit("error", message=f"unknown command {line.strip()!r}")
                continue
            code, n, per_push = words[1], int(words[2]), int(words[3])
            t_cmd = now()
            result = await server.burst(code, n=n, ticks_per_push=per_push)
            t_done = now()
            emit(
                "done",
                code=code,
                ticks=result.ticks,
                messages=result.messages,
                connections=result.connections,
                bytes_per_connection=result.bytes_per_connection,
                encode_s=result.encode_seconds,
                write_s=result.write_seconds,
                t_cmd=t_cmd,
                # the first byte of the burst could be written from here on (frames pre-encoded)
                t_write_start=t_cmd + result.encode_seconds,
                t_done=t_done,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rsa-key", default="", help="require encryption with this key")
    parser.add_argument("--aes-mode", default="auto", choices=("auto", "cbc", "ecb"))
    parser.add_argument(
        "--allow-any-code", action="store_true", help="every well-formed code exists (snapshots)"
    )
    parser.add_argument("--max-ticks", type=int, default=1000, help="tape length per security")
    args = parser.parse_args()
    extra: dict[str, Any] = {"max_ticks": args.max_ticks}
    if args.allow_any_code:
        extra["allow_any_code"] = True
    anyio.run(_serve, args.seed, args.rsa_key, args.aes_mode, extra)


if __name__ == "__main__":
    main()
