"""Running a large CPU-bound step (parsing a big CSV, comparing it with the stored list) off the event loop.

A worker thread alone is not enough: while millions of freshly parsed objects are alive, the cyclic garbage
collector's full collections scan all of them and hold the GIL for a second or more, which stops the event
loop too. Parsed rows hold no reference cycles (reference counting frees them), so the cyclic collector is
paused while any such step runs and resumed when the last one ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_running = 0
_was_enabled = True


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    global _running, _was_enabled
    with _lock:
        if _running == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0 and _was_enabled:
                gc.enable()


async def off_loop(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`function(*args, **kwargs)` in a worker thread, with the cyclic collector paused meanwhile."""
    with collector_paused():
        return await asyncio.to_thread(function, *args, **kwargs)
