"""Crash consistency: SIGKILL the operator while many SSOClients are created, then deleted.

The kills are timed by progress: each one happens within about 10 ms of the sidecar reaching a
randomly drawn number of clients. That lands kills between a sidecar write and the status write
that records it, the window in which a careless operator creates a second client or forgets one.
The seed is printed, so a failing order of kills can be replayed.
"""

from __future__ import annotations

import asyncio
import os
import random
import time

import pytest

from tests.faults.helpers import (
    CLIENTS,
    client_with_secret,
    list_items,
    sidecar_customer_ids,
    status_customer_ids,
    wait_all_ready,
    wait_none_left,
    write_counts,
)
from tests.fixtures.operator import OperatorEnv, OperatorProcess, wait_for

CLIENT_COUNT = int(os.environ.get("EXPERIO_FAULTS_CLIENT_COUNT", "200"))
KILLS = 5
KILL_POLL_SECONDS = 0.01


async def _kill_when(
    env: OperatorEnv,
    operator: OperatorProcess,
    reached: int,
    count_now: object,
) -> tuple[OperatorProcess, int]:
    """Kill the operator once ``count_now()`` reaches ``reached``; start a new one."""
    assert callable(count_now)
    deadline = time.monotonic() + 60
    while count_now() < reached:
        assert time.monotonic() < deadline, f"the sidecar never reached {reached} clients"
        await asyncio.sleep(KILL_POLL_SECONDS)
    await operator.kill()
    seen = int(count_now())
    return await env.start_operator(), seen


async def test_sigkill_during_create_and_delete(
    operator_env: OperatorEnv, record_property: pytest.RecordProperty
) -> None:
    env = operator_env
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    print(f"\ncrash consistency: {CLIENT_COUNT} clients, seed {seed}")
    record_property("seed", seed)

    operator = await env.start_operator()
    await env.ready_settings()
    manifests = []
    for index in range(CLIENT_COUNT):
        name = f"crash-{index:03d}"
        manifests += client_with_secret(
            env, name, f"{name}-secret", domains=[f"{name}.example.com"]
        )

    # Creation: kill at KILLS random points on the way to CLIENT_COUNT sidecar clients.
    # kubectl applies the objects one by one, so the kills start while it is still at work.
    started = time.monotonic()
    applying = asyncio.create_task(env.apply(*manifests))
    thresholds = sorted(rng.sample(range(1, CLIENT_COUNT), KILLS))
    kills_during_create = []
    for reached in thresholds:
        operator, seen = await _kill_when(
            env, operator, reached, lambda: len(env.emulator.clients())
        )
        kills_during_create.append(seen)
    await applying
    converge_seconds = await wait_all_ready(env, CLIENTS, CLIENT_COUNT, timeout=120)
    total_create_seconds = time.monotonic() - started

    items = await list_items(env, CLIENTS)
    owned = status_customer_ids(items)
    assert len(owned) == CLIENT_COUNT
    assert len(set(owned)) == CLIENT_COUNT, "two SSOClients report the same customer ID"
    assert sidecar_customer_ids(env.emulator) == owned
    for item in items:
        name = item["metadata"]["name"]
        assert env.emulator.secret_matches(item["status"]["customerId"], f"{name}-secret")
    writes_after_create = write_counts(env.emulator)
    print(
        f"  create: killed at {kills_during_create} sidecar clients; all Ready "
        f"{total_create_seconds:.1f} s after apply ({converge_seconds:.1f} s after the last "
        f"restart); sidecar writes {writes_after_create}"
    )
    record_property("create_seconds", round(total_create_seconds, 1))

    # Deletion: kill at KILLS random points on the way down to no sidecar client.
    started = time.monotonic()
    deleting = asyncio.create_task(env.kubectl("delete", CLIENTS, "--all", "--wait=false"))
    thresholds = sorted(rng.sample(range(1, CLIENT_COUNT), KILLS))
    kills_during_delete = []
    for deleted in thresholds:
        operator, seen = await _kill_when(
            env, operator, deleted, lambda: CLIENT_COUNT - len(env.emulator.clients())
        )
        kills_during_delete.append(seen)
    await deleting
    gone_seconds = await wait_none_left(env, CLIENTS, timeout=120)
    total_delete_seconds = time.monotonic() - started

    async def sidecar_empty() -> bool:
        return not env.emulator.clients()

    await wait_for(sidecar_empty, timeout=5, description="the sidecar to hold no client")
    writes = write_counts(env.emulator)
    print(
        f"  delete: killed after {kills_during_delete} deletions; all gone "
        f"{total_delete_seconds:.1f} s after kubectl delete ({gone_seconds:.1f} s after the "
        f"last restart); sidecar writes in total {writes}"
    )
    record_property("delete_seconds", round(total_delete_seconds, 1))
    assert operator.process is not None
    assert operator.process.returncode is None
