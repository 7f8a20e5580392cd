"""Test your own bot against the bundled OpenD simulator: the README's example, run as is."""

from __future__ import annotations

import pytest

import aiofutu
from aiofutu.sim import Simulator
from aiofutu.testing import opend_config

pytest_plugins = ["aiofutu.testing"]  # the opend and client fixtures (or in your conftest.py)


async def vwap(client: aiofutu.Client, code: str, n: int) -> float:
    """The bot under test: the volume-weighted average price of the next n ticks."""
    value = volume = 0.0
    async with client.ticker_stream(code, is_first_push=False) as ticks:
        async for tick in ticks:
            value += tick.price * tick.volume
            volume += tick.volume
            n -= 1
            if n == 0:
                break
    return value / volume


@pytest.mark.anyio
@opend_config(burst=500)  # the simulator pushes 500 ticks as soon as the bot subscribes
async def test_vwap(opend: Simulator, client: aiofutu.Client) -> None:
    result = await vwap(client, "HK.00700", 500)
    ticks = opend.market.history("HK.00700")[-500:]  # what the simulator sent
    expected = sum(t.price * t.volume for t in ticks) / sum(t.volume for t in ticks)
    assert result == pytest.approx(expected)


@pytest.mark.anyio
@opend_config(scenario="gaps", gap_every=10)  # every 10th trade never reaches the tape
async def test_gaps_are_reported(opend: Simulator, client: aiofutu.Client) -> None:
    async with client.ticker_stream("HK.00700", is_first_push=False) as ticks:
        await opend.burst("HK.00700", 100)  # or drive the simulator by hand
        received = [await anext(ticks) for _ in range(100)]
    sent = opend.market.history("HK.00700")[-100:]
    assert [t.sequence for t in received] == [t.sequence for t in sent]
    assert len(ticks.gaps) == 10


@pytest.mark.anyio
@opend_config(scenario="quota")  # no subscription quota left
async def test_vwap_when_opend_refuses(client: aiofutu.Client) -> None:
    with pytest.raises(aiofutu.OpenDError, match="quota exhausted"):
        await vwap(client, "HK.00700", 10)


@pytest.mark.anyio
async def test_an_unknown_code_is_refused(client: aiofutu.Client) -> None:
    with pytest.raises(aiofutu.OpenDError, match=r"unknown stock HK\.99999"):
        await vwap(client, "HK.99999", 10)  # OpenD refuses a code it does not know


class TestMySecurities:
    @pytest.fixture
    def opend_securities(self) -> dict[str, str]:
        """Securities of your own, for the tests of this class (or of a whole conftest.py)."""
        return {"HK.01235": "My Test Co"}

    @pytest.mark.anyio
    @opend_config(burst=50, securities=["US.ZZZZ"])  # or per test, with the other options
    async def test_vwap_of_my_securities(self, client: aiofutu.Client) -> None:
        assert await vwap(client, "HK.01235", 50) > 0
        assert await vwap(client, "US.ZZZZ", 50) > 0
