from __future__ import annotations

import pytest

pytest_plugins = ["aiofutu.testing"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs on asyncio and on trio: the library uses no asyncio-only API."""
    return str(request.param)
