"""Large steps run off the event loop with the cyclic collector paused, and it resumes afterwards."""

from __future__ import annotations

import asyncio
import gc

from dx_shared.bulk import collector_paused, off_loop


def test_the_collector_is_paused_while_any_bulk_step_runs_and_resumes_after_the_last() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_bulk_step_runs_in_a_worker_thread_and_returns_its_result() -> None:
    async def main() -> tuple[int, bool]:
        return await off_loop(lambda: (sum(range(10)), gc.isenabled()))

    assert asyncio.run(main()) == (45, False)
    assert gc.isenabled()
