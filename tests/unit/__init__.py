"""Unit tests: pure logic, no sockets, no event loop."""

from __future__ import annotations
