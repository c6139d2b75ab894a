"""A keyed work queue with coalescing, delayed adds and per-key exponential backoff.

Every watch event, Secret change and timer only adds an object's key here; workers take keys
and run the one idempotent reconcile for that object. This makes the operator level-based:

- A key is queued at most once. Ten events for one object while it waits cause one reconcile.
- A key being processed is never processed by two workers at once; an add during processing
  makes it run once more afterwards, so the last event is never lost.
- ``add_after`` schedules a key (drift checks, retries); the earliest pending time wins.
- ``retry`` schedules a key after an exponential delay with jitter that grows with the key's
  consecutive failures, and ``forget`` resets the count after a success.

The queue lives on one event loop and is not thread-safe.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

from experio_sso.backoff import Backoff

__all__ = ["WorkQueue"]

Key = TypeVar("Key", bound=Hashable)


class WorkQueue(Generic[Key]):
    """A coalescing queue of object keys; see the module docstring."""

    def __init__(self, backoff: Backoff | None = None) -> None:
        self.backoff = backoff or Backoff()
        self._ready: deque[Key] = deque()
        self._queued: set[Key] = set()
        self._processing: set[Key] = set()
        self._dirty: set[Key] = set()
        self._timers: dict[Key, tuple[float, asyncio.TimerHandle]] = {}
        self._failures: dict[Key, int] = {}
        self._wakeup = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._ready)

    def add(self, key: Key) -> None:
        """Queue ``key`` now, unless it is already queued."""
        if self._closed:
            return
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._ready.append(key)
        self._wakeup.set()

    def add_after(self, key: Key, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds; an earlier pending time for it is kept."""
        if self._closed:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        pending = self._timers.get(key)
        if pending is not None:
            if pending[0] <= when:
                return
            pending[1].cancel()
        handle = loop.call_at(when, self._fire, key)
        self._timers[key] = (when, handle)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def retry(self, key: Key) -> float:
        """Count a failure for ``key`` and queue it after the backoff; return the delay."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = self.backoff.delay(failures)
        self.add_after(key, delay)
        return delay

    def failures(self, key: Key) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: Key) -> None:
        """Reset the failure count of ``key`` after a success."""
        self._failures.pop(key, None)

    def discard(self, key: Key) -> None:
        """Drop every trace of ``key``: its timer and failure count (for deleted objects)."""
        pending = self._timers.pop(key, None)
        if pending is not None:
            pending[1].cancel()
        self._failures.pop(key, None)

    async def get(self) -> Key:
        """Wait for a key and mark it as being processed; call :meth:`done` afterwards."""
        while not self._ready:
            if self._closed:
                raise asyncio.CancelledError
            self._wakeup.clear()
            await self._wakeup.wait()
        key = self._ready.popleft()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: Key) -> None:
        """Mark ``key`` as processed; queue it again if it was added meanwhile."""
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def close(self) -> None:
        """Stop handing out keys and cancel every timer."""
        self._closed = True
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._wakeup.set()
