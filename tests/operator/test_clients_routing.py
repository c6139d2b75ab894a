"""End-to-end tests of routing conflicts between SSOClients of one namespace.

A namespace routes at most one active allow-all client and one active client per email domain.
The oldest client wins. A loser recovers by itself once the conflict is gone.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.operator import OperatorEnv, wait_for

pytestmark = pytest.mark.cluster


async def started(env: OperatorEnv) -> OperatorEnv:
    await env.start_operator()
    await env.ready_settings()
    return env


async def create_client(env: OperatorEnv, name: str, **manifest: Any) -> None:
    """Apply a client and its Secret without waiting for Ready."""
    await env.create_secret(f"{name}-idp", {"clientSecret": f"{name}-secret"})
    await env.apply(env.client_manifest(name, **manifest))


async def routes(env: OperatorEnv) -> dict[str, Any]:
    return await env.routing_table() or {}


async def test_second_allow_all_client_conflicts(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    await env.ready_client("first")

    await create_client(env, "second")

    ready = await env.wait_condition(
        "ssoclient", "second", status="False", reason="AllowAllConflict"
    )
    assert "Only one allow-all client is supported" in ready["message"]
    assert "'first'" in ready["message"]
    stalled = await env.wait_condition("ssoclient", "second", type_="Stalled")
    assert stalled["reason"] == "AllowAllConflict"
    assert await env.condition("ssoclient", "second", "Reconciling") is None
    body = await env.get("ssoclient", "second")
    assert body is not None
    assert body["status"]["routed"] is False
    event = await env.wait_event("second", "AllowAllConflict")
    assert event["type"] == "Warning"

    async def first_routed() -> bool:
        allow_all = (await routes(env)).get("allowAll") or {}
        return allow_all.get("client") == "first"

    await wait_for(first_routed, description="the older client to be the allow-all route")
    first = await env.condition("ssoclient", "first")
    assert first is not None
    assert first["status"] == "True"


async def test_allow_all_conflict_recovers_on_deletion(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    await env.ready_client("first")
    await create_client(env, "second")
    await env.wait_condition("ssoclient", "second", status="False", reason="AllowAllConflict")

    await env.delete("ssoclient", "first")

    await env.wait_condition("ssoclient", "second", reason="Synced")
    assert await env.condition("ssoclient", "second", "Stalled") is None

    async def second_routed() -> bool:
        allow_all = (await routes(env)).get("allowAll") or {}
        return allow_all.get("client") == "second" and allow_all.get("active") is True

    await wait_for(second_routed, description="the younger client to become the allow-all route")


async def test_shared_domain_conflicts(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    await env.ready_client("first", domains=["acme.com"])

    await create_client(env, "second", domains=["beta.com", "acme.com"])

    ready = await env.wait_condition("ssoclient", "second", status="False", reason="DomainConflict")
    assert "acme.com" in ready["message"]
    assert "'first'" in ready["message"]
    assert "spec.emailDomains" in ready["message"]
    await env.wait_condition("ssoclient", "second", type_="Stalled")

    async def first_only() -> bool:
        domains = (await routes(env)).get("domains") or {}
        return (domains.get("acme.com") or {}).get("client") == "first" and "beta.com" not in (
            domains
        )

    await wait_for(first_only, description="only the older client's domains to be routed")


async def test_domain_conflict_recovers_on_deactivation(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    await env.ready_client("first", domains=["acme.com"])
    await create_client(env, "second", domains=["acme.com"])
    await env.wait_condition("ssoclient", "second", status="False", reason="DomainConflict")

    await env.apply(env.client_manifest("first", domains=["acme.com"], active=False))

    await env.wait_condition("ssoclient", "second", reason="Synced")
    assert await env.condition("ssoclient", "second", "Stalled") is None

    async def second_routed() -> bool:
        route = ((await routes(env)).get("domains") or {}).get("acme.com") or {}
        return route.get("client") == "second" and route.get("active") is True

    await wait_for(second_routed, description="acme.com to be routed to the younger client")


async def test_inactive_clients_do_not_conflict(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    await env.ready_client("first", active=False)

    body = await env.ready_client("second")

    assert body["status"]["routed"] is True
    ready = await env.condition("ssoclient", "second")
    assert ready is not None
    assert ready["reason"] == "Synced"
