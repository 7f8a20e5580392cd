"""End-to-end tests of ``examples/`` and of asyncio-only third-party stacks.

FastAPI/uvicorn, aiohttp, httpx, websockets and uvloop run on asyncio only, so the tests in this
directory override the suite's ``anyio_backend`` (asyncio and trio) with asyncio alone; a module
may widen it again (``test_vwap_bot.py`` runs the bot under both).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest
from _e2e import SimControl

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def opend_ctl() -> AsyncIterator[SimControl]:
    """A started, restartable simulator (no live ticks: drive it with ``burst``)."""
    async with anyio.create_task_group() as tg:
        ctl = SimControl(tg)
        await ctl.start()
        yield ctl
        tg.cancel_scope.cancel()
