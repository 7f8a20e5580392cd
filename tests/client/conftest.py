from __future__ import annotations

from typing import Any

import pytest

from aiofutu import sim


@pytest.fixture
def opend_options() -> dict[str, Any]:
    return {"tick_rate": 0.0, "seed": 7, "codes": ("HK.00700", "US.AAPL")}


@pytest.fixture
def server(opend: sim.Simulator) -> sim.Simulator:
    return opend
