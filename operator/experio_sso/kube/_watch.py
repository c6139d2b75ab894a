"""A metadata-only list and watch that runs until cancelled.

The operator must notice when a Secret that an SSOClient references changes, without ever
receiving the Secret's data. The API server sends ``PartialObjectMetadata`` instead of the
object when the ``Accept`` header requests it, so list and watch request that and nothing else.
A server that cannot serve it returns 406 instead of falling back to whole Secrets.

Only names, UIDs and resourceVersions are kept from each object. Annotations are dropped at
once because kubectl's ``last-applied-configuration`` annotation of a Secret contains its data.
NOTE: that annotation still crosses the wire; only Secrets applied without it (server-side
apply, or created by a controller) keep their data off this connection entirely.

The loop: list, then watch from the list's resourceVersion with bookmarks. After a server-side
timeout or a broken stream it watches again from the last resourceVersion seen. After 410 Gone
it lists again and emits the difference to what was known, so objects deleted in between are
reported as ``DELETED``. While the API server is unreachable it retries with exponential
backoff and jitter, logging one WARNING per outage and one INFO when the watch is back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx

from experio_sso.backoff import Backoff

from ._errors import (
    Gone,
    KubeError,
    RequestContext,
    Unavailable,
    error_from_response,
    error_from_status,
    translated_errors,
)
from ._resources import ResourceKind

if TYPE_CHECKING:
    from ._client import KubeClient

__all__ = ["Backoff", "MetadataEvent", "watch_metadata"]

logger = logging.getLogger("experio_sso.kube")

LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
WATCH_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"

MIN_WATCH_SECONDS = 300
"""Shortest server-side watch timeout in seconds; each watch picks a random 1-2x of it, so
that many watches do not all reconnect at once."""
READ_MARGIN_SECONDS = 30.0
"""How long past the server-side timeout a silent stream is read before it counts as broken."""


@dataclass(frozen=True)
class MetadataEvent:
    """A change of one object, as the watch saw it.

    ``namespace`` is ``""`` for cluster-scoped objects. For ``DELETED`` events found by a
    relist, ``uid`` and ``resource_version`` are the last ones seen before the deletion.
    """

    type: Literal["ADDED", "MODIFIED", "DELETED"]
    namespace: str
    name: str
    uid: str
    resource_version: str


@dataclass(frozen=True)
class _Seen:
    uid: str
    resource_version: str


class _Outage:
    """Counts failed attempts, so that one outage logs one WARNING and one recovery INFO."""

    def __init__(self, backoff: Backoff, what: str) -> None:
        self.backoff = backoff
        self.what = what
        self.attempts = 0
        self.started = 0.0

    def next_delay(self, error: KubeError) -> float:
        delay = self.backoff.delay(self.attempts + 1)
        if isinstance(error, Unavailable) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        if self.attempts == 0:
            self.started = time.monotonic()
            logger.warning(
                "Watching %s failed: %s; retrying in %.1f seconds, then with backoff up to "
                "%.0f seconds (further failures are logged at DEBUG)",
                self.what,
                error,
                delay,
                self.backoff.maximum,
            )
        else:
            logger.debug(
                "Watching %s failed again (attempt %d): %s; retrying in %.1f seconds",
                self.what,
                self.attempts + 1,
                error,
                delay,
            )
        self.attempts += 1
        return delay

    def recovered(self) -> None:
        if self.attempts:
            logger.info(
                "Watching %s resumed after %.1f seconds and %d failed attempts",
                self.what,
                time.monotonic() - self.started,
                self.attempts,
            )
        self.attempts = 0


def _metadata_of(item: dict[str, Any]) -> tuple[tuple[str, str], _Seen]:
    metadata = item.get("metadata") or {}
    key = (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
    return key, _Seen(str(metadata.get("uid") or ""), str(metadata.get("resourceVersion") or ""))


def _event(kind: str, key: tuple[str, str], seen: _Seen) -> MetadataEvent:
    return MetadataEvent(kind, key[0], key[1], seen.uid, seen.resource_version)  # type: ignore[arg-type]


def _replace(
    known: dict[tuple[str, str], _Seen], items: list[dict[str, Any]]
) -> Iterator[MetadataEvent]:
    """Replace ``known`` with a fresh list and yield the events that lead from one to the other."""
    listed = dict(_metadata_of(item) for item in items)
    for key, seen in list(known.items()):
        if key not in listed or listed[key].uid != seen.uid:
            # Deleted, or deleted and recreated under the same name, while not watching.
            del known[key]
            yield _event("DELETED", key, seen)
    for key, seen in listed.items():
        previous = known.get(key)
        known[key] = seen
        if previous is None:
            yield _event("ADDED", key, seen)
        elif previous.resource_version != seen.resource_version:
            yield _event("MODIFIED", key, seen)


async def watch_metadata(
    client: KubeClient,
    kind: ResourceKind,
    namespace: str | None,
    on_listed: Callable[[], None] | None = None,
) -> AsyncGenerator[MetadataEvent, None]:
    """Yield the objects of a kind as ``ADDED`` events, then every change, until cancelled.

    ``on_listed`` is called after the events of each complete listing were yielded, so a
    caller can tell when it has seen every object once.

    Never ends by itself. :class:`Unavailable` and :class:`Gone` are handled by retrying and
    relisting. Other errors end the iteration, for example :class:`Forbidden` and
    :class:`NotFound` (an unknown kind), because waiting does not cure them.
    """
    what = f"{kind.resource} in namespace {namespace}" if namespace else f"{kind.resource}"
    outage = _Outage(client.watch_backoff, what)
    known: dict[tuple[str, str], _Seen] = {}
    resource_version: str | None = None
    context = RequestContext("watch", kind.resource, namespace)

    while True:
        try:
            if resource_version is None:
                items, resource_version = await client.list_pages(
                    kind, namespace, accept=LIST_ACCEPT
                )
                outage.recovered()
                for event in _replace(known, items):
                    yield event
                del items
                if on_listed is not None:
                    on_listed()

            timeout_seconds = random.randint(MIN_WATCH_SECONDS, 2 * MIN_WATCH_SECONDS)
            params = {
                "watch": "1",
                "resourceVersion": resource_version,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": str(timeout_seconds),
            }
            with translated_errors(context):
                headers = await client.headers(WATCH_ACCEPT)
                request = client.build_request(
                    "GET",
                    kind.path(namespace),
                    headers,
                    params=params,
                    timeout=httpx.Timeout(
                        client.timeout, read=timeout_seconds + READ_MARGIN_SECONDS
                    ),
                )
                watch_started = time.monotonic()
                events_received = 0
                response = await client.send(request, stream=True)
                try:
                    if response.is_error:
                        await response.aread()
                        raise error_from_response(response, context)
                    outage.recovered()
                    async for line in response.aiter_lines():
                        if not line.strip():
                            continue
                        events_received += 1
                        event = json.loads(line)
                        event_type = event.get("type")
                        item = event.get("object") or {}
                        if event_type == "ERROR":
                            raise error_from_status(int(item.get("code") or 500), item, context)
                        key, seen = _metadata_of(item)
                        del event, item
                        if seen.resource_version:
                            resource_version = seen.resource_version
                        if event_type == "BOOKMARK":
                            continue
                        if event_type == "DELETED":
                            known.pop(key, None)
                        elif event_type in ("ADDED", "MODIFIED"):
                            known[key] = seen
                        else:
                            logger.debug("Ignoring a watch event of type %r", event_type)
                            continue
                        yield _event(event_type, key, seen)
                finally:
                    await response.aclose()
                if not events_received and time.monotonic() - watch_started < 1.0:
                    # A proxy or a server in shutdown that ends every watch at once would
                    # otherwise be asked again in a tight loop.
                    raise Unavailable(f"{context} failed: the API server ended the watch at once")
            # The server ended the watch at timeoutSeconds: watch again from where it stopped.
            logger.debug("Watch of %s ended at resourceVersion %s", what, resource_version)

        except Gone:
            # resourceVersion is older than the API server keeps (compaction, a restart with
            # an empty watch cache): list again and emit what changed meanwhile.
            logger.info("Watching %s must start over from a new list (410 Gone)", what)
            resource_version = None
        except Unavailable as exc:
            await asyncio.sleep(outage.next_delay(exc))
