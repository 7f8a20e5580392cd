"""Benchmarks of aiofutu against the official SDK (``python -m benchmarks``; see README.md).

Not part of the package and not run by ``make test``.
"""

from __future__ import annotations
