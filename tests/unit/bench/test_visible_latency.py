"""How dx_bench e2e turns acceptances and plan-report polls into latencies and stalls (pure functions)."""

from __future__ import annotations

import pytest

from dx_bench.e2e import _matched_latencies, _stalls
from dx_bench.measure import percentile


def test_the_kth_acceptance_is_matched_to_the_first_poll_that_counted_k() -> None:
    accepted = [0.0, 0.1, 0.2]
    polls = [(0.05, 10), (0.3, 11), (0.6, 13)]  # the count before the phase was 10
    assert _matched_latencies(accepted, polls, base=10) == pytest.approx([0.3, 0.5, 0.4])


def test_acceptances_never_seen_get_no_latency() -> None:
    assert _matched_latencies([0.0, 0.1], [(0.5, 1)], base=0) == pytest.approx([0.5])


def test_a_count_standing_still_for_a_second_while_completions_are_outstanding_is_a_stall() -> None:
    accepted = [0.0, 0.1, 0.2, 0.3]
    polls = [(0.05, 0), (0.5, 1), (2.0, 1), (2.1, 4)]
    assert _stalls(accepted, polls, base=0) == (1, pytest.approx(1.6))


def test_a_count_standing_still_with_nothing_outstanding_is_no_stall() -> None:
    accepted = [0.0]
    polls = [(0.1, 1), (5.0, 1), (9.0, 1)]
    assert _stalls(accepted, polls, base=0)[0] == 0


def test_nearest_rank_percentiles() -> None:
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 1.0)) == (50.0, 99.0, 100.0)
    assert percentile([], 0.5) != percentile([], 0.5)  # NaN
