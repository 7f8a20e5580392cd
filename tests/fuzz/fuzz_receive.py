"""atheris harness for the receive path (optional; not collected by pytest).

    pip install atheris
    python tests/fuzz/fuzz_receive.py -max_total_time=300

Any exception other than aiofutu's typed errors, or a hang, is a finding.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from tests.fuzz.receive_path import receive_path


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    chunk = fdp.ConsumeIntInRange(1, 4096)
    receive_path(fdp.ConsumeBytes(fdp.remaining_bytes()), chunk)


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
