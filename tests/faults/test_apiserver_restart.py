"""API server restart: the operator's watches recover without an operator restart.

The control plane is shared by the whole test session, so the API server is always started
again, also when the test fails. ``ControlPlane`` is synchronous; its calls run in a thread so
that the in-process emulator keeps serving requests meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from tests.faults.helpers import client_with_secret
from tests.fixtures.operator import OperatorEnv, wait_for

RECONCILED_WITHIN_SECONDS = 10.0


async def test_changes_after_apiserver_restart(
    operator_env: OperatorEnv, record_property: pytest.RecordProperty
) -> None:
    env = operator_env
    operator = await env.start_operator()
    await env.ready_settings()
    body = await env.ready_client("before", domains=["before.example.com"])
    customer_id = body["status"]["customerId"]
    assert operator.process is not None
    pid = operator.process.pid

    stopped = time.monotonic()
    await asyncio.to_thread(env.cluster.stop_apiserver)
    try:
        # Give the operator time to notice: its watches end and their reconnects fail.
        await wait_for(
            _watch_failure_logged(env), timeout=30, description="the operator to log a failure"
        )
    finally:
        await asyncio.to_thread(env.cluster.start_apiserver)
    downtime = time.monotonic() - stopped

    # Three changes after the restart: a spec change, a new client and a rotated secret.
    restarted = time.monotonic()
    await env.kubectl(
        "patch", "ssoclient", "before", "--type=merge", "-p", '{"spec":{"displayName":"After"}}'
    )
    await env.apply(*client_with_secret(env, "after", "after-secret-1"))
    await env.create_secret("before-idp", {"clientSecret": "before-secret-2"})

    await env.wait_sidecar_client(
        customer_id,
        lambda client: client["displayName"] == "After",
        timeout=RECONCILED_WITHIN_SECONDS,
        description="the new display name in the sidecar",
    )
    renamed_seconds = time.monotonic() - restarted

    async def rotated() -> bool:
        return env.emulator.secret_matches(customer_id, "before-secret-2")

    await wait_for(rotated, timeout=RECONCILED_WITHIN_SECONDS, description="the rotated secret")
    rotated_seconds = time.monotonic() - restarted
    await env.wait_condition("ssoclient", "after", timeout=RECONCILED_WITHIN_SECONDS)
    created_seconds = time.monotonic() - restarted
    new_client = await env.get("ssoclient", "after")
    assert new_client is not None
    assert env.emulator.secret_matches(new_client["status"]["customerId"], "after-secret-1")
    await env.wait_condition("ssoclient", "before", timeout=RECONCILED_WITHIN_SECONDS)

    print(
        f"\napiserver restart: down {downtime:.1f} s; after the restart the spec change reached "
        f"the sidecar in {renamed_seconds:.1f} s, the rotated secret in {rotated_seconds:.1f} s, "
        f"and the new client was Ready in {created_seconds:.1f} s"
    )
    record_property("spec_change_seconds", round(renamed_seconds, 1))
    record_property("new_client_seconds", round(created_seconds, 1))
    assert operator.process.returncode is None
    assert operator.process.pid == pid
    assert max(renamed_seconds, rotated_seconds, created_seconds) <= RECONCILED_WITHIN_SECONDS


def _watch_failure_logged(env: OperatorEnv) -> Callable[[], Awaitable[bool]]:
    """Return a probe that is True once the operator logs a failed watch or request."""
    before = len(env.operator_logs())

    async def probe() -> bool:
        added = env.operator_logs()[before:]
        return any(
            word in added for word in ("Watching", "Connection", "connect", "refused", "failed")
        )

    return probe
