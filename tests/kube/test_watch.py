"""The metadata-only Secret watch against the real API server, including a restart of it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from experio_sso.kube import (
    SECRETS,
    Forbidden,
    KubeClient,
    MetadataEvent,
    load_connection,
)
from tests.kube.conftest import SECRET_VALUE, SECRET_VALUE_BASE64, RecordingTransport, secret_body
from tests.support.control_plane import ControlPlane

EVENT_TIMEOUT_SECONDS = 15.0


class EventCollector:
    """Iterate a watch in a task and let a test await the event it expects."""

    def __init__(self, events: AsyncIterator[MetadataEvent]) -> None:
        self.events = events
        self.seen: list[MetadataEvent] = []
        self._changed = asyncio.Condition()
        self.task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for event in self.events:
            async with self._changed:
                self.seen.append(event)
                self._changed.notify_all()

    async def wait_for(
        self, predicate: Callable[[MetadataEvent], bool], within: float = EVENT_TIMEOUT_SECONDS
    ) -> MetadataEvent:
        async with asyncio.timeout(within), self._changed:
            while True:
                for event in self.seen:
                    if predicate(event):
                        return event
                if self.task.done():
                    self.task.result()
                    raise AssertionError(f"the watch ended; events seen: {self.seen}")
                await self._changed.wait()

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def wait_until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Poll ``condition`` until it holds; for state that has no event to await."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def named(event_type: str, name: str) -> Callable[[MetadataEvent], bool]:
    return lambda event: event.type == event_type and event.name == name


async def test_watch_sees_create_update_delete(cluster: ControlPlane, namespace: str) -> None:
    connection = await load_connection(str(cluster.kubeconfig))
    transport = RecordingTransport(httpx.AsyncHTTPTransport(verify=connection.ssl_context))
    client = KubeClient(connection, transport=transport)
    try:
        first = await client.create(SECRETS, namespace, secret_body("first", key=SECRET_VALUE))
        collector = EventCollector(client.watch_metadata(SECRETS, namespace))

        listed = await collector.wait_for(named("ADDED", "first"))
        assert listed.namespace == namespace
        assert listed.uid == first["metadata"]["uid"]
        assert listed.resource_version == first["metadata"]["resourceVersion"]

        second = await client.create(SECRETS, namespace, secret_body("second", key=SECRET_VALUE))
        added = await collector.wait_for(named("ADDED", "second"))
        assert added.uid == second["metadata"]["uid"]

        updated = await client.patch(SECRETS, namespace, "second", {"data": {"key": "eA=="}})
        modified = await collector.wait_for(named("MODIFIED", "second"))
        assert modified.resource_version == updated["metadata"]["resourceVersion"]

        await client.delete(SECRETS, namespace, "second")
        deleted = await collector.wait_for(named("DELETED", "second"))
        assert deleted.uid == second["metadata"]["uid"]

        await collector.stop()
    finally:
        await client.aclose()

    listing = [body for url, body in transport.bodies if url.endswith("secrets?limit=500")]
    streams = [body for url, body in transport.bodies if "watch=1" in url]
    assert listing
    assert streams
    assert b"PartialObjectMetadataList" in listing[0]
    assert b'"name":"second"' in b"".join(streams)
    for body in listing + streams:
        assert b'"data"' not in body
        assert SECRET_VALUE_BASE64.encode() not in body
    assert [event.type for event in collector.seen if event.name == "second"] == [
        "ADDED",
        "MODIFIED",
        "DELETED",
    ]


async def test_watch_drops_annotations(kube: KubeClient, namespace: str) -> None:
    body = secret_body("applied", key=SECRET_VALUE)
    body["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": f'{{"data":{{"key":"{SECRET_VALUE}"}}}}'
    }
    await kube.create(SECRETS, namespace, body)
    collector = EventCollector(kube.watch_metadata(SECRETS, namespace))

    event = await collector.wait_for(named("ADDED", "applied"))
    await collector.stop()

    assert SECRET_VALUE not in repr(event)
    assert not hasattr(event, "annotations")


async def test_watch_in_all_namespaces(kube: KubeClient, namespace: str) -> None:
    collector = EventCollector(kube.watch_metadata(SECRETS, None))
    await kube.create(SECRETS, namespace, secret_body("anywhere", key="x"))

    event = await collector.wait_for(named("ADDED", "anywhere"))
    await collector.stop()

    assert event.namespace == namespace


async def test_watch_stops_on_cancel(cluster: ControlPlane, namespace: str) -> None:
    connection = await load_connection(str(cluster.kubeconfig))
    transport = RecordingTransport(httpx.AsyncHTTPTransport(verify=connection.ssl_context))
    client = KubeClient(connection, transport=transport)
    try:
        await client.create(SECRETS, namespace, secret_body("present", key="x"))
        collector = EventCollector(client.watch_metadata(SECRETS, namespace))
        await collector.wait_for(named("ADDED", "present"))
        # The list's response was closed when read, so the one open stream is the watch.
        await wait_until(lambda: transport.open_streams == 1)

        started = time.monotonic()
        collector.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await collector.task
        stopped_in = time.monotonic() - started

        assert stopped_in < 1.0
        assert transport.open_streams == 0
        assert await client.get(SECRETS, namespace, "present") is not None
    finally:
        await client.aclose()


async def test_watch_forbidden_is_raised(cluster: ControlPlane, namespace: str) -> None:
    cluster.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    client = await KubeClient.connect(str(cluster.service_account_kubeconfig(namespace, "nobody")))
    try:

        async def drain() -> None:
            async with contextlib.aclosing(client.watch_metadata(SECRETS, namespace)) as events:
                async for _ in events:
                    pass

        with pytest.raises(Forbidden) as caught:
            await drain()
    finally:
        await client.aclose()

    assert 'cannot list resource "secrets"' in str(caught.value)


async def test_watch_survives_api_server_restart(
    cluster: ControlPlane, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="experio_sso.kube")
    connection = await load_connection(str(cluster.kubeconfig))
    transport = RecordingTransport(httpx.AsyncHTTPTransport(verify=connection.ssl_context))
    client = KubeClient(connection, timeout=5.0, transport=transport)
    try:
        await client.create(SECRETS, namespace, secret_body("before", key="x"))
        collector = EventCollector(client.watch_metadata(SECRETS, namespace))
        await collector.wait_for(named("ADDED", "before"))
        # Stop the server while the watch stream is open, not while it is being requested.
        await wait_until(lambda: transport.open_streams == 1)

        try:
            await asyncio.to_thread(cluster.stop_apiserver)
        finally:
            await asyncio.to_thread(cluster.start_apiserver)
        restarted = time.monotonic()

        await client.create(SECRETS, namespace, secret_body("after", key="x"))
        await client.patch(SECRETS, namespace, "before", {"data": {"key": "eQ=="}})
        await collector.wait_for(named("ADDED", "after"))
        await collector.wait_for(named("MODIFIED", "before"))
        delivered_in = time.monotonic() - restarted
        await collector.stop()
    finally:
        await client.aclose()

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    resumed = [r.getMessage() for r in caplog.records if "resumed after" in r.getMessage()]
    print(f"{resumed}; events after the restart arrived within {delivered_in:.2f} s")
    assert delivered_in < EVENT_TIMEOUT_SECONDS
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "retrying in" in warnings[0].getMessage()
    assert resumed
    assert [e.type for e in collector.seen if e.name == "before"].count("ADDED") == 1
