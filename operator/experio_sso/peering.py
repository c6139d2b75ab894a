"""Pause the operator's own workers exactly when kopf's peering pauses this replica.

With several replicas, kopf's peering keeps one active. Each replica writes a keep-alive
(priority, lifetime, last seen) into the status of the peering object. A replica pauses its
watchers while another live peer has a higher priority, or the same priority. The
controllers run on the operator's own work queue, which kopf does not know about, so this gate
reads the same peering object and applies the same rule to let the workers run or wait.

Each replica gets a random priority by default, because kopf pauses every replica when peers
share one. A replica that is killed stays in the peering object until its keep-alive expires,
so a standby takes over after at most the peering lifetime.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from experio_sso.kube import KubeClient, KubeError, ResourceKind

logger = logging.getLogger(__name__)

CLUSTER_PEERING = ResourceKind("kopf.dev", "v1", "clusterkopfpeerings", "ClusterKopfPeering")
NAMESPACED_PEERING = ResourceKind("kopf.dev", "v1", "kopfpeerings", "KopfPeering")
POLL_SECONDS = 1.0
"""Seconds between two reads of the peering object. When a replica with a higher priority
starts, two replicas may both run for up to this long, which idempotent reconciles tolerate."""


def parse_time(text: str) -> datetime.datetime:
    parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def may_run(peers: Mapping[str, Any], identity: str, priority: int, now: datetime.datetime) -> bool:
    """Tell whether kopf lets this replica run, given the peering object's status.

    A peer counts while ``lastseen + lifetime`` is in the future. This replica runs unless a
    counted peer other than itself has a priority at least as high.
    """
    for peer_identity, info in peers.items():
        if peer_identity == identity or not isinstance(info, Mapping):
            continue
        try:
            deadline = parse_time(str(info["lastseen"])) + datetime.timedelta(
                seconds=int(info.get("lifetime", 60))
            )
            peer_priority = int(info.get("priority", 0))
        except (KeyError, ValueError, TypeError):
            continue
        if deadline > now and peer_priority >= priority:
            return False
    return True


class PeeringGate:
    """An event that is set while this replica may run, kept up to date by :meth:`run`."""

    def __init__(
        self,
        kube: KubeClient,
        name: str,
        namespace: str | None,
        identity: str,
        priority: int,
        on_activated: Callable[[], Awaitable[None]],
    ) -> None:
        self._kube = kube
        self._name = name
        self._namespace = namespace
        self._kind = NAMESPACED_PEERING if namespace else CLUSTER_PEERING
        self.identity = identity
        self.priority = priority
        self._on_activated = on_activated
        self.active = asyncio.Event()

    async def run(self) -> None:
        """Poll the peering object until cancelled, opening and closing the gate."""
        while True:
            try:
                body = await self._kube.get(self._kind, self._namespace or "", self._name)
            except KubeError as exc:
                logger.warning(
                    "Could not read the peering object %s: %s; keeping the current state "
                    "and reading again in %.0f s.",
                    self._name,
                    exc,
                    POLL_SECONDS,
                )
            else:
                if body is None:
                    logger.error(
                        "The peering object %s %s does not exist; create it (see deploy/peering) "
                        "or run one replica without peering. Workers stay paused.",
                        self._kind.kind,
                        self._name,
                    )
                    self.active.clear()
                else:
                    now = datetime.datetime.now(datetime.UTC)
                    allowed = may_run(body.get("status") or {}, self.identity, self.priority, now)
                    await self._switch(allowed)
            await asyncio.sleep(POLL_SECONDS)

    async def _switch(self, allowed: bool) -> None:
        if allowed and not self.active.is_set():
            logger.info(
                "This replica (priority %d) is the active one; resuming the workers.", self.priority
            )
            await self._on_activated()
            self.active.set()
        elif not allowed and self.active.is_set():
            logger.info(
                "Another replica has priority over this one (%d); pausing the workers.",
                self.priority,
            )
            self.active.clear()
