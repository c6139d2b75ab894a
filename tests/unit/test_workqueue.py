"""The work queue coalesces keys, never runs one key twice at once, and backs off."""

from __future__ import annotations

import asyncio

import pytest

from experio_sso.backoff import Backoff
from experio_sso.workqueue import WorkQueue


async def test_queue_coalesces_repeated_adds() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for _ in range(10):
        queue.add("a")
    queue.add("b")

    assert len(queue) == 2
    assert await queue.get() == "a"
    assert await queue.get() == "b"


async def test_key_added_while_processing_runs_again_after_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add("a")

    assert len(queue) == 0
    queue.done(key)
    assert len(queue) == 1
    assert await queue.get() == "a"


async def test_add_after_keeps_earliest_time() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("a", 60)
    queue.add_after("a", 0.01)
    queue.add_after("a", 30)

    key = await asyncio.wait_for(queue.get(), timeout=2)
    assert key == "a"


async def test_retry_backs_off_and_forget_resets() -> None:
    queue: WorkQueue[str] = WorkQueue(Backoff(initial=1.0, maximum=8.0))
    delays = [queue.retry("a") for _ in range(6)]

    assert queue.failures("a") == 6
    assert 0.5 <= delays[0] <= 1.0
    assert 1.0 <= delays[1] <= 2.0
    assert all(4.0 <= delay <= 8.0 for delay in delays[3:])
    queue.forget("a")
    assert queue.failures("a") == 0


async def test_discard_cancels_pending_timer() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("a", 0.05)
    queue.discard("a")
    queue.add_after("b", 0.1)

    assert await asyncio.wait_for(queue.get(), timeout=2) == "b"


async def test_close_wakes_waiting_worker() -> None:
    queue: WorkQueue[str] = WorkQueue()
    waiter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.close()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiter, timeout=2)


@pytest.mark.parametrize(
    ("failures", "low", "high"),
    [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (10, 30.0, 60.0)],
)
def test_backoff_delay_doubles_up_to_maximum(failures: int, low: float, high: float) -> None:
    backoff = Backoff(initial=1.0, maximum=60.0)
    for _ in range(50):
        assert low <= backoff.delay(failures) <= high
