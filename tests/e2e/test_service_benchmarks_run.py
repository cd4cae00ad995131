"""The single-service benchmarks (`python -m dx_bench training | nomination | auth`) run to the end on a tiny
load and print their figures: a benchmark that no longer runs (an API that now wants a token, say) is
found here, not by the next person measuring. No figure's value is asserted, only that it is printed and
that what each counted is what it sent."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]


def _bench(*arguments: str) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "dx_bench", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=540
    )
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr[-4000:]}"
    return run.stdout


def test_the_training_benchmark_records_every_delivery_it_sends() -> None:
    out = _bench("training", "--deliveries", "40", "--concurrency", "4")
    assert "statuses: {200: 40}; completions recorded: 40" in out, out
    assert re.search(r"webhook completions accepted per second: \d+", out), out
    assert re.search(r"CPU per delivery: service [0-9.]+ ms, database [0-9.]+ ms", out), out
    assert re.search(r"\(\d+\.\d+ s until the outbox was empty, 0 left\)", out), out


def test_the_roster_import_benchmark_prints_its_three_imports() -> None:
    out = _bench("nomination", "--rows", "300")
    for phase in ("first import (all added)", "identical re-import (no-op)", "re-import, 10% moved"):
        assert re.search(rf"{re.escape(phase)}\s+300 rows in", out), out
    assert "(added 300, changed 0, unchanged 0)" in out, out


def test_the_token_check_benchmark_prints_its_ratios() -> None:
    out = _bench("auth", "--requests", "50")
    assert "open route (baseline)" in out, out
    assert re.search(r"token checked \(RS256\)\s+median\s+[0-9.]+ ms\s+ratio\s+[0-9.]+×", out), out


def test_the_report_benchmark_refuses_a_size_it_cannot_compare() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "dx_bench", "reporting", "--events", "500"], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 2
    assert "--events must be more than 10,000" in run.stderr
