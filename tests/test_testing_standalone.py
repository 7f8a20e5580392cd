"""The README's ``aiofutu.testing`` example works in a user's project, outside this repository's
conftest and pytest settings: copied to an empty folder and run by a fresh pytest."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).with_name("test_testing_plugin.py")


def test_example_runs_in_a_project_of_its_own(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / "test_my_bot.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # stop the rootdir search here
    args = ["-q", "-p", "no:cacheprovider", "--strict-markers", "-W", "error", "test_my_bot.py"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # five tests, on each anyio backend installed (asyncio, and trio if present)
    assert re.search(r"\b(5|10) passed", result.stdout), result.stdout
