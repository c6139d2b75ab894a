"""Kubernetes events about our objects, shown by ``kubectl describe`` and event exporters.

Events are best-effort: a failure to post one is logged and never fails a reconcile. Messages
are written by the controllers and never contain secret values.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from experio_sso.conditions import now_rfc3339
from experio_sso.constants import MANAGER_NAME
from experio_sso.kube import EVENTS, KubeClient, KubeError

logger = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 1024


class EventRecorder:
    """Posts core/v1 Events that point at an object."""

    def __init__(self, kube: KubeClient, instance: str) -> None:
        self._kube = kube
        self._instance = instance

    async def record(
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
            await self._kube.create(EVENTS, metadata["namespace"], event)
        except KubeError as exc:
            logger.warning(
                "Could not post event %s for %s/%s: %s; continuing without it.",
                reason,
                metadata["namespace"],
                metadata["name"],
                exc,
            )
