"""Sidecar faults: errors, latency spikes, dropped connections and a full outage.

The emulator injects the faults. The operator runs with a drift interval of 5 seconds (the
minimum), so that the settings probe the sidecar with ``Ping`` often enough to notice an outage
of an otherwise idle namespace within 10 seconds.

Figures printed: the time until every resource reports ``SidecarUnavailable``, the requests the
operator sent during the outage (per command and per second), and the recovery time.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from propelauth_emulator.metrics import DROPPED, INJECTED_ERROR
from tests.faults.helpers import (
    CLIENTS,
    SETTINGS,
    client_with_secret,
    command_summary,
    list_items,
    ready_reason,
    requests_between,
    sidecar_customer_ids,
    status_customer_ids,
    wait_all_ready,
)
from tests.fixtures.operator import OperatorEnv, wait_for

DRIFT_INTERVAL_SECONDS = 5
CLIENTS_PER_PHASE = 8
OUTAGE_SECONDS = 20.0
UNAVAILABLE_WITHIN_SECONDS = 10.0
# The settings' Ping probe waits 0.5 to 5 seconds between tries (jittered backoff, 5 s maximum
# in these tests), at most about 12 Pings in 20 s. Up to 8 client workers may each send one
# request before the first failure is seen. Clients that kept calling on their own retry
# schedule would send more than 3 requests per second with 2 * CLIENTS_PER_PHASE clients.
MAX_OUTAGE_REQUESTS_PER_SECOND = 1.0
LATENCY_SPIKE_MS = 2000


def _phase_manifests(env: OperatorEnv, phase: str) -> list[dict[str, Any]]:
    manifests = []
    for index in range(CLIENTS_PER_PHASE):
        name = f"{phase}-{index}"
        manifests += client_with_secret(
            env, name, f"{name}-secret", domains=[f"{name}.example.com"]
        )
    return manifests


async def _run_chaos_phase(env: OperatorEnv, phase: str, *, drop_after_command: bool) -> None:
    """Create clients while errors, latency spikes and drops are injected, until each fault
    has happened at least once (errors twice)."""
    env.emulator.reset_counters()
    env.emulator.set_faults(
        error_rate=0.3,
        latency_spike_rate=0.2,
        latency_spike_ms=LATENCY_SPIKE_MS,
        drop_rate=0.15,
        drop_after_command=drop_after_command,
        seed=random.randrange(1 << 32),
    )
    await env.apply(*_phase_manifests(env, phase))

    def injected() -> dict[str, int]:
        log = env.emulator.request_log
        return {
            "errors": sum(1 for r in log if r.outcome == INJECTED_ERROR),
            "drops": sum(1 for r in log if r.outcome == DROPPED),
            "spikes": sum(1 for r in log if r.latency_ms >= LATENCY_SPIKE_MS),
            "requests": len(log),
        }

    async def enough_faults() -> dict[str, int] | None:
        counts = injected()
        if counts["errors"] >= 2 and counts["drops"] >= 1 and counts["spikes"] >= 1:
            return counts
        return None

    counts = await wait_for(enough_faults, timeout=60, description=f"faults during {phase}")
    env.emulator.clear_faults()
    print(f"  {phase} (drop after command: {drop_after_command}): injected {counts}")


async def _assert_sidecar_matches(env: OperatorEnv) -> list[dict[str, Any]]:
    items = await list_items(env, CLIENTS)
    owned = status_customer_ids(items)
    assert len(set(owned)) == len(items)
    assert sidecar_customer_ids(env.emulator) == owned
    for item in items:
        name = item["metadata"]["name"]
        client = env.sidecar_client(item["status"]["customerId"])
        assert client is not None
        assert client["displayName"] == item["spec"]["displayName"]
        assert env.emulator.secret_matches(item["status"]["customerId"], f"{name}-secret")
    return items


async def test_sidecar_faults_and_outage(
    operator_env: OperatorEnv, record_property: pytest.RecordProperty
) -> None:
    env = operator_env
    await env.start_operator(f"--drift-interval-seconds={DRIFT_INTERVAL_SECONDS}")
    await env.ready_settings()
    print()

    # Errors, latency spikes and dropped connections, first before and then after the command
    # ran (its change is stored but the response is lost).
    started = time.monotonic()
    await _run_chaos_phase(env, "drop-before", drop_after_command=False)
    await _run_chaos_phase(env, "drop-after", drop_after_command=True)
    recovery_seconds = await wait_all_ready(env, CLIENTS, 2 * CLIENTS_PER_PHASE, timeout=60)
    await _assert_sidecar_matches(env)
    print(
        f"  chaos: {time.monotonic() - started:.1f} s in all; every client Ready "
        f"{recovery_seconds:.1f} s after the faults ended"
    )

    # Full outage: every resource reports SidecarUnavailable, and requests stay few.
    names = [item["metadata"]["name"] for item in await list_items(env, CLIENTS)]
    env.emulator.reset_counters()
    outage_started_at = time.time()
    outage_started = time.monotonic()
    env.emulator.set_faults(outage=True)

    async def all_unavailable() -> bool:
        settings = await list_items(env, SETTINGS)
        clients = await list_items(env, CLIENTS)
        return all(ready_reason(item) == "SidecarUnavailable" for item in settings + clients)

    await wait_for(
        all_unavailable,
        timeout=UNAVAILABLE_WITHIN_SECONDS + 5,
        description="every resource to report SidecarUnavailable",
    )
    unavailable_seconds = time.monotonic() - outage_started

    # Changes during the outage must be applied afterwards: a new display name, a new client,
    # and a deleted client.
    changed, deleted = names[0], names[1]
    await env.kubectl(
        "patch", "ssoclient", changed, "--type=merge", "-p", '{"spec":{"displayName":"Renamed"}}'
    )
    await env.apply(*client_with_secret(env, "during-outage", "during-outage-secret"))
    await env.delete("ssoclient", deleted)
    await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - outage_started)))

    outage_ended_at = time.time()
    env.emulator.clear_faults()
    during = requests_between(env.emulator, outage_started_at, outage_ended_at)
    rate = len(during) / (outage_ended_at - outage_started_at)
    print(
        f"  outage of {outage_ended_at - outage_started_at:.1f} s: every resource "
        f"SidecarUnavailable after {unavailable_seconds:.1f} s; {len(during)} requests "
        f"({rate:.2f} per second): {command_summary(during)}"
    )
    record_property("unavailable_seconds", round(unavailable_seconds, 1))
    record_property("outage_requests_per_second", round(rate, 2))

    recovered = time.monotonic()
    await env.wait_gone("ssoclient", deleted, timeout=30)
    await wait_all_ready(env, CLIENTS, 2 * CLIENTS_PER_PHASE, timeout=30)
    recovery_seconds = time.monotonic() - recovered
    print(f"  after the outage: every change applied within {recovery_seconds:.1f} s")
    record_property("outage_recovery_seconds", round(recovery_seconds, 1))

    assert unavailable_seconds <= UNAVAILABLE_WITHIN_SECONDS
    assert rate <= MAX_OUTAGE_REQUESTS_PER_SECOND
    items = await _assert_sidecar_matches(env)
    renamed = next(item for item in items if item["metadata"]["name"] == changed)
    assert renamed["spec"]["displayName"] == "Renamed"
    assert deleted not in {item["metadata"]["name"] for item in items}
