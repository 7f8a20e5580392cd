from __future__ import annotations

import pytest

pytest_plugins = ["aiofutu.testing"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
