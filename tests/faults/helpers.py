"""Helpers shared by the fault tests: bulk manifests, listings and sidecar request figures.

The fault tests work with up to hundreds of objects at once, so they list a kind with one
``kubectl get`` instead of reading objects one by one. The emulator's counters and request log
measure what the operator sent to the sidecar.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from propelauth_emulator import EmulatorServer
from propelauth_emulator.metrics import RequestRecord
from tests.fixtures.operator import OperatorEnv, wait_for

CLIENTS = "ssoclients"
SETTINGS = "experioauthsettings"
FINALIZER = "auth.experio.cloud/finalizer"
SIDECAR_WRITE_COMMANDS = ("CreateOidcClient", "PatchOidcClient", "DeleteOidcClient")


def secret_manifest(env: OperatorEnv, name: str, data: dict[str, str]) -> dict[str, Any]:
    """Return an Opaque Secret manifest in the test namespace."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": env.namespace},
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }


def client_with_secret(
    env: OperatorEnv, name: str, client_secret: str, **kwargs: Any
) -> list[dict[str, Any]]:
    """Return the Secret and the SSOClient manifests of one client, Secret first."""
    client = env.client_manifest(name, **kwargs)
    secret_name = client["spec"]["identityProvider"]["clientSecretRef"]["name"]
    return [secret_manifest(env, secret_name, {"clientSecret": client_secret}), client]


async def list_items(env: OperatorEnv, kind: str) -> list[dict[str, Any]]:
    """Return every object of ``kind`` in the test namespace, with one request."""
    output = await env.kubectl("get", kind, "-o", "json")
    items: list[dict[str, Any]] = json.loads(output).get("items") or []
    return items


def ready_condition(body: dict[str, Any]) -> dict[str, Any] | None:
    """Return the Ready condition of an object, or None when it has none."""
    for condition in (body.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return dict(condition)
    return None


def is_ready(body: dict[str, Any]) -> bool:
    """Tell whether an object is Ready=True for its current generation."""
    ready = ready_condition(body)
    return (
        ready is not None
        and ready.get("status") == "True"
        and ready.get("observedGeneration") == body["metadata"].get("generation")
    )


def ready_reason(body: dict[str, Any]) -> str | None:
    ready = ready_condition(body)
    return None if ready is None else ready.get("reason")


async def wait_all_ready(env: OperatorEnv, kind: str, count: int, timeout: float) -> float:
    """Wait until ``count`` objects of ``kind`` exist, all Ready; return the seconds taken."""
    started = time.monotonic()

    async def probe() -> str | bool:
        items = await list_items(env, kind)
        not_ready = [item["metadata"]["name"] for item in items if not is_ready(item)]
        return len(items) == count and not not_ready

    await wait_for(probe, timeout=timeout, description=f"{count} {kind} to be Ready")
    return time.monotonic() - started


async def wait_none_left(env: OperatorEnv, kind: str, timeout: float) -> float:
    """Wait until no object of ``kind`` is left; return the seconds taken."""
    started = time.monotonic()

    async def probe() -> bool:
        return not await list_items(env, kind)

    await wait_for(probe, timeout=timeout, description=f"every {kind} to be deleted")
    return time.monotonic() - started


def sidecar_customer_ids(emulator: EmulatorServer) -> list[str]:
    """Return the customer IDs of the sidecar's clients, sorted, duplicates kept."""
    return sorted(str(client["customerId"]) for client in emulator.clients())


def status_customer_ids(items: Iterable[dict[str, Any]]) -> list[str]:
    """Return the status.customerId of each object that has one, sorted, duplicates kept."""
    return sorted(
        str((item.get("status") or {}).get("customerId"))
        for item in items
        if (item.get("status") or {}).get("customerId")
    )


def write_counts(emulator: EmulatorServer) -> dict[str, int]:
    """Return the number of Create, Patch and Delete requests, whatever their outcome."""
    counters = emulator.counters
    return {command: sum(counters.get(command, {}).values()) for command in SIDECAR_WRITE_COMMANDS}


def requests_between(
    emulator: EmulatorServer, started_at: float, ended_at: float
) -> list[RequestRecord]:
    """Return the API requests that arrived between two Unix times."""
    return [r for r in emulator.request_log if started_at <= r.started_at <= ended_at]


def command_summary(records: Sequence[RequestRecord]) -> dict[str, int]:
    """Return the number of requests per command (or endpoint) in ``records``."""
    summary: dict[str, int] = {}
    for record in records:
        name = record.command or record.endpoint
        summary[name] = summary.get(name, 0) + 1
    return dict(sorted(summary.items()))
