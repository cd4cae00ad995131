"""`./dx` explains itself: no argument, `-h` or `--help` print every command and option."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

DX = Path(__file__).resolve().parents[2] / "dx"
EVERY_COMMAND_AND_OPTION = ("up", "--fresh", "--detach", "--no-demo", "down", "test [pytest args]", "docs")


@pytest.mark.parametrize("args", [[], ["--help"], ["-h"], ["help"]])
def test_dx_without_a_command_or_with_help_prints_a_usage_listing_every_command_and_option(args: list[str]) -> None:
    result = subprocess.run([str(DX), *args], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == (2 if not args else 0)
    assert result.stdout.startswith("usage: ./dx")
    for word in EVERY_COMMAND_AND_OPTION:
        assert word in result.stdout


def test_an_unknown_command_or_option_is_named_and_the_usage_follows() -> None:
    result = subprocess.run([str(DX), "bogus"], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "unknown command: bogus" in result.stderr
    assert "usage: ./dx" in result.stderr
