"""The ``aiofutu`` command line: ``tail``, ``ticker``, ``record``, ``sim``, ``demo`` and ``keygen``.

A user error (OpenD unreachable, an invalid code, a refused subscription, a bad option) ends
with one line on stderr and a non-zero status, never a traceback: 2 for a bad command line,
1 for everything that went wrong at run time, 130 after Ctrl-C (``record`` then writes its file
and exits 0, since Ctrl-C is how a recording is ended).

``_main`` parses and checks the command line and runs a command; ``_commands`` holds the
commands, ``_output`` renders ticks.
"""

from __future__ import annotations

from ._main import build_parser as build_parser  # the docs test parses documented lines
from ._main import main

__all__ = ("main",)
