"""`tune_garbage_collector`: what a service applies once it has started (`DX_GC_GEN0_THRESHOLD`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from dx_shared.service import tune_garbage_collector
from dx_shared.settings import Settings


@pytest.fixture
def collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()


def test_a_started_service_collects_its_youngest_generation_less_often_and_freezes_what_it_loaded(
    collector: None,
) -> None:
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()
    tune_garbage_collector(12_345)
    assert gc.get_threshold() == (12_345, 10, 10)
    assert gc.get_freeze_count() > 0


def test_zero_leaves_the_collector_as_python_set_it(collector: None) -> None:
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()
    tune_garbage_collector(0)
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_the_setting_defaults_to_a_larger_threshold_and_refuses_a_negative_one() -> None:
    assert Settings().gc_gen0_threshold == 50_000
    assert Settings(gc_gen0_threshold=0).gc_gen0_threshold == 0
    with pytest.raises(ValueError, match="gc_gen0_threshold"):
        Settings(gc_gen0_threshold=-1)
