"""A finalizer write that meets a newer object version is retried, never dropped."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from experio_sso.constants import FINALIZER
from experio_sso.controllers.clients import ClientController
from experio_sso.kube import Conflict
from experio_sso.store import ObjectStore
from experio_sso.workqueue import WorkQueue

KEY = ("shop", "acme")


class ConflictingKube:
    """Fake client that rejects every patch with 409, as for a stale resourceVersion."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    async def patch(self, kind: object, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.patches.append(patch)
        raise Conflict("the object has been modified", status=409)


def client_body() -> dict[str, Any]:
    return {
        "apiVersion": "auth.experio.cloud/v1alpha1",
        "kind": "SSOClient",
        "metadata": {
            "namespace": KEY[0],
            "name": KEY[1],
            "uid": "uid-1",
            "resourceVersion": "41",
            "finalizers": [FINALIZER],
            "deletionTimestamp": "2026-01-01T00:00:00Z",
        },
    }


async def test_conflicting_finalizer_removal_is_queued_again() -> None:
    queue: WorkQueue[tuple[str, str]] = WorkQueue()
    kube = ConflictingKube()
    clients = ObjectStore()
    clients.upsert(client_body())
    runtime = SimpleNamespace(kube=kube, clients=clients, client_queue=queue, client_kind=None)
    controller = ClientController(runtime)  # type: ignore[arg-type]

    removed = await controller._set_finalizers(KEY, client_body(), [])

    assert not removed
    assert kube.patches[0]["metadata"]["resourceVersion"] == "41"
    assert queue.failures(KEY) == 1


def test_status_write_records_returned_resource_version() -> None:
    clients = ObjectStore()
    clients.upsert(client_body())

    clients.update_status(KEY, {"metadata": {"resourceVersion": "42"}, "status": {"x": 1}})

    body = clients.get(KEY)
    assert body is not None
    assert body["metadata"]["resourceVersion"] == "42"
    assert body["status"] == {"x": 1}
