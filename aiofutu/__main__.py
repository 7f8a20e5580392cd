"""``python -m aiofutu``: the command line (see ``aiofutu.cli``)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
