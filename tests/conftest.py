from __future__ import annotations

import pytest

pytest_plugins = ["aiofutu.testing"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs on asyncio and on trio.

    On asyncio the connection reads through an ``asyncio.Protocol`` (the fast path), elsewhere
    through an anyio stream and a reader task: both paths run the whole suite.
    """
    return str(request.param)
