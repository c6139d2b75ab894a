"""Teardown: a namespace's settings, clients and Secrets deleted at once, in random order.

There is no controller-manager in the test control plane, so deleting a namespace would leave
its objects Terminating forever. The test does what the namespace controller does: it deletes
every object of the namespace at the same time. Two rounds run with different random orders in
the same namespace; the seed is printed.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from tests.faults.helpers import (
    CLIENTS,
    FINALIZER,
    SETTINGS,
    client_with_secret,
    list_items,
    wait_all_ready,
    wait_none_left,
)
from tests.fixtures.operator import OperatorEnv, wait_for

CLIENT_COUNT = 10
ROUNDS = 2
TEARDOWN_WITHIN_SECONDS = 30.0


async def _populate(env: OperatorEnv, round_number: int) -> None:
    await env.ready_settings()
    manifests: list[dict[str, Any]] = []
    for index in range(CLIENT_COUNT):
        name = f"round{round_number}-{index}"
        manifests += client_with_secret(env, name, f"{name}-secret", domains=[f"{name}.com"])
    await env.apply(*manifests)
    await wait_all_ready(env, CLIENTS, CLIENT_COUNT, timeout=60)
    assert len(env.emulator.clients()) == CLIENT_COUNT


async def _everything(env: OperatorEnv) -> list[tuple[str, str]]:
    """Return (kind, name) of every settings, client, Secret and ConfigMap in the namespace."""
    objects = []
    for kind in (SETTINGS, CLIENTS, "secrets", "configmaps"):
        objects += [(kind, item["metadata"]["name"]) for item in await list_items(env, kind)]
    return objects


async def test_delete_everything_at_once(
    operator_env: OperatorEnv, record_property: pytest.RecordProperty
) -> None:
    env = operator_env
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    print(f"\nteardown: {CLIENT_COUNT} clients per round, seed {seed}")
    await env.start_operator()

    for round_number in range(ROUNDS):
        await _populate(env, round_number)
        objects = await _everything(env)
        rng.shuffle(objects)

        started = time.monotonic()
        await asyncio.gather(*(env.delete(kind, name) for kind, name in objects))
        for kind in (CLIENTS, SETTINGS, "secrets"):
            await wait_none_left(env, kind, timeout=TEARDOWN_WITHIN_SECONDS)
        seconds = time.monotonic() - started

        async def sidecar_empty() -> bool:
            return not env.emulator.clients()

        await wait_for(sidecar_empty, timeout=5, description="the sidecar to hold no client")
        print(f"  round {round_number}: deleted {len(objects)} objects in {seconds:.1f} s")
        record_property(f"round_{round_number}_seconds", round(seconds, 1))
        assert seconds <= TEARDOWN_WITHIN_SECONDS

        # The API server keeps an object with a finalizer, so none may be left anywhere.
        for kind in (SETTINGS, CLIENTS, "secrets", "configmaps"):
            for item in await list_items(env, kind):
                assert FINALIZER not in (item["metadata"].get("finalizers") or []), item
