"""The public read API: the examples of docs/api.md run as they are written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from me162.reader import Reading, read
from me162.reader.session import ReaderConfig

DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"


@pytest.mark.parametrize("block", re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S))
def test_every_example_in_docs_api_runs(block: str) -> None:
    exec(compile(block, str(DOC), "exec"), {})


def test_read_returns_typed_values_and_never_changes_its_arguments() -> None:
    regs = ["1.8.0", "2.8.0"]
    reading = read("me162://?frozen=1", speed=20, registers=regs)
    assert regs == ["1.8.0", "2.8.0"]
    assert isinstance(reading, Reading) and len(reading) == 2 and set(reading) == {"1.8.0", "2.8.0"}
    assert str(reading["1.8.0"].value) == "33402.264" and reading["1.8.0"].text == "0033402.264"
    with pytest.raises(KeyError):
        reading["9.9.9"]


def test_importing_the_cli_does_not_import_the_driver() -> None:
    import subprocess
    import sys

    code = (
        "import sys, me162.reader.cli; print('me162.reader.driver' in sys.modules, 'serial' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "False"


def test_the_reader_config_default_is_not_shared() -> None:
    a, b = ReaderConfig(), ReaderConfig()
    assert a == b and a is not b


def test_the_package_says_its_version() -> None:
    import importlib.metadata

    import me162

    assert me162.__version__ == importlib.metadata.version("me162")
