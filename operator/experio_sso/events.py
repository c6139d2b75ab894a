"""Kubernetes events about our objects, shown by ``kubectl describe`` and event exporters.

Events are best-effort: a reconcile only queues an event, and a background task posts the
queue with a few requests at once, so that a burst of changes is not slowed down by one more
API request per object. A failure to post is logged and never fails a reconcile; a full queue
drops events and logs how many. Messages are written by the controllers and never contain
secret values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Literal

from experio_sso.conditions import now_rfc3339
from experio_sso.constants import MANAGER_NAME
from experio_sso.kube import EVENTS, KubeClient, KubeError

logger = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 1024
QUEUE_SIZE = 10_000
POSTERS = 4
FLUSH_SECONDS = 2.0


class EventRecorder:
    """Queues core/v1 Events that point at an object and posts them in the background."""

    def __init__(self, kube: KubeClient, instance: str) -> None:
        self._kube = kube
        self._instance = instance
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._dropped = 0

    async def run(self) -> None:
        """Post queued events until cancelled, ``POSTERS`` at a time."""
        async with asyncio.TaskGroup() as posters:
            for _ in range(POSTERS):
                posters.create_task(self._post_forever())

    async def flush(self) -> None:
        """Wait up to ``FLUSH_SECONDS`` for the queued events to be posted."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), FLUSH_SECONDS)

    async def _post_forever(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._post(event)
            finally:
                self._queue.task_done()

    async def _post(self, event: dict[str, Any]) -> None:
        involved = event["involvedObject"]
        try:
            await self._kube.create(EVENTS, involved["namespace"], event)
        except KubeError as exc:
            logger.warning(
                "Could not post event %s for %s/%s: %s; continuing without it.",
                event["reason"],
                involved["namespace"],
                involved["name"],
                exc,
            )

    def record(
        self,
        body: dict[str, Any],
        reason: str,
        message: str,
        type_: Literal["Normal", "Warning"] = "Normal",
    ) -> None:
        metadata = body["metadata"]
        timestamp = now_rfc3339()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{metadata['name']}.",
                "namespace": metadata["namespace"],
            },
            "involvedObject": {
                "apiVersion": body.get("apiVersion"),
                "kind": body.get("kind"),
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata.get("uid"),
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "reason": reason,
            "message": message[:MAX_MESSAGE_LENGTH],
            "type": type_,
            "source": {"component": MANAGER_NAME},
            "reportingComponent": MANAGER_NAME,
            "reportingInstance": self._instance,
            "firstTimestamp": timestamp,
            "lastTimestamp": timestamp,
            "count": 1,
        }
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                logger.warning(
                    "The event queue is full; dropped %d events so far, including %s for %s/%s.",
                    self._dropped,
                    reason,
                    metadata["namespace"],
                    metadata["name"],
                )
