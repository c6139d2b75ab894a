"""End-to-end tests of an SSOClient's life: drift, deletion, adoption, deactivation.

Changes "behind the operator's back" go through the emulator's own ``/run-command`` API with a
separately minted integration key, as an administrator using the sidecar dashboard would.
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from experio_sso import sidecar
from experio_sso.constants import FINALIZER
from experio_sso.resources import generate_customer_id
from tests.fixtures.operator import OperatorEnv, wait_for

REDIRECT_URL = "https://experio.example.com/api/auth/sso/callback"
DRIFT_INTERVAL = "--drift-interval-seconds=5"
# Drift is checked once per interval at a per-client offset, so allow two intervals and a margin.
DRIFT_TIMEOUT = 20.0

pytestmark = pytest.mark.cluster


async def started(env: OperatorEnv, *operator_arguments: str) -> OperatorEnv:
    await env.start_operator(*operator_arguments)
    await env.ready_settings()
    return env


async def admin_key(env: OperatorEnv) -> SecretStr:
    return SecretStr(await env.emulator.mint_key())


def legacy_request(customer_id: str, secret: str) -> sidecar.CreateOidcClientRequest:
    """Return a sidecar client made by hand before the operator, with other fields."""
    return sidecar.CreateOidcClientRequest(
        idp_info_from_customer=sidecar.MicrosoftEntraIdpInfo(
            client_id="acme-client-id",
            client_secret=SecretStr(secret),
            uses_pkce=True,
            tenant_id="99999999-8888-7777-6666-555555555555",
        ),
        customer_id=customer_id,
        redirect_url="https://old.example.com/callback",
        display_name="Legacy Acme",
        email_domain_allowlist=["legacy.com"],
        additional_scopes=["legacy"],
    )


# --- drift ------------------------------------------------------------------------------------


async def test_sidecar_change_is_reverted(operator_env: OperatorEnv) -> None:
    env = await started(operator_env, DRIFT_INTERVAL)
    body = await env.ready_client("acme", domains=["acme.com"])
    customer_id = body["status"]["customerId"]

    async with env.sidecar_api() as api:
        await api.patch_oidc_client(
            await admin_key(env),
            customer_id,
            sidecar.PatchOidcClientRequest(
                display_name="Changed In Dashboard", email_domain_allowlist=["evil.com"]
            ),
        )
    changed = env.sidecar_client(customer_id)
    assert changed is not None
    assert changed["displayName"] == "Changed In Dashboard"

    client = await env.wait_sidecar_client(
        customer_id,
        lambda c: c.get("displayName") == "Acme",
        timeout=DRIFT_TIMEOUT,
        description="the drift to be corrected",
    )
    assert client["emailDomainAllowlist"] == ["acme.com"]
    event = await env.wait_event("acme", "DriftCorrected")
    assert event["type"] == "Warning"
    assert "displayName" in event["message"]
    assert "emailDomainAllowlist" in event["message"]
    await env.wait_condition("ssoclient", "acme")


async def test_sidecar_deletion_is_recreated(operator_env: OperatorEnv) -> None:
    env = await started(operator_env, DRIFT_INTERVAL)
    body = await env.ready_client("acme", client_secret="recreated-secret", domains=["acme.com"])
    customer_id = body["status"]["customerId"]

    async with env.sidecar_api() as api:
        await api.delete_oidc_client(await admin_key(env), customer_id)
    assert env.sidecar_client(customer_id) is None

    client = await env.wait_sidecar_client(
        customer_id, timeout=DRIFT_TIMEOUT, description="the deleted client to be recreated"
    )
    assert client["displayName"] == "Acme"
    assert client["redirectUrl"] == REDIRECT_URL
    assert env.emulator.secret_matches(customer_id, "recreated-secret")
    event = await env.wait_event("acme", "DriftCorrected")
    assert "missing" in event["message"]
    await env.wait_condition("ssoclient", "acme")


async def test_drift_check_without_drift_writes_nothing(operator_env: OperatorEnv) -> None:
    env = await started(operator_env, DRIFT_INTERVAL)
    await env.ready_client("acme", domains=["acme.com"])
    env.emulator.reset_counters()

    # Two drift checks read the client; neither may write it.
    async def two_reads() -> bool:
        return env.emulator.counters.get("FetchOidcClient", {}).get("ok", 0) >= 2

    await wait_for(two_reads, timeout=DRIFT_TIMEOUT, description="two drift checks")
    assert set(env.emulator.counters) <= {"FetchOidcClient", "Ping"}
    assert all(e["reason"] != "DriftCorrected" for e in await env.events("acme"))


# --- deletion ---------------------------------------------------------------------------------


async def test_deletion_removes_sidecar_client(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    body = await env.ready_client("acme", domains=["acme.com"])
    customer_id = body["status"]["customerId"]
    assert FINALIZER in body["metadata"]["finalizers"]

    await env.delete("ssoclient", "acme")

    await env.wait_gone("ssoclient", "acme")
    assert env.sidecar_client(customer_id) is None
    event = await env.wait_event("acme", "Deleted")
    assert customer_id in event["message"]


async def test_deletion_of_missing_sidecar_client(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    body = await env.ready_client("acme", domains=["acme.com"])
    customer_id = body["status"]["customerId"]
    async with env.sidecar_api() as api:
        await api.delete_oidc_client(await admin_key(env), customer_id)

    await env.delete("ssoclient", "acme")

    await env.wait_gone("ssoclient", "acme")
    assert env.emulator.counters["DeleteOidcClient"]["OidcClientNotFound"] == 1
    await env.wait_event("acme", "Deleted")


async def test_orphan_policy_keeps_sidecar_client(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    body = await env.ready_client("acme", domains=["acme.com"], deletionPolicy="Orphan")
    customer_id = body["status"]["customerId"]
    env.emulator.reset_counters()

    await env.delete("ssoclient", "acme")

    await env.wait_gone("ssoclient", "acme")
    assert env.sidecar_client(customer_id) is not None
    assert "DeleteOidcClient" not in env.emulator.counters
    event = await env.wait_event("acme", "Orphaned")
    assert customer_id in event["message"]


# --- adoption ---------------------------------------------------------------------------------


async def test_spec_customer_id_adopts(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    async with env.sidecar_api() as api:
        await api.create_oidc_client(
            await admin_key(env), legacy_request("legacy-acme", "legacy-secret")
        )
    env.emulator.reset_counters()

    body = await env.ready_client(
        "acme", client_secret="adopted-secret", domains=["acme.com"], customerId="legacy-acme"
    )

    assert body["status"]["customerId"] == "legacy-acme"
    client = env.sidecar_client("legacy-acme")
    assert client is not None
    assert client["displayName"] == "Acme"
    assert client["redirectUrl"] == REDIRECT_URL
    assert client["emailDomainAllowlist"] == ["acme.com"]
    assert client["additionalScopes"] == []
    assert client["idpInfoFromCustomer"]["tenantId"] == "11111111-2222-3333-4444-555555555555"
    assert client["idpInfoFromCustomer"]["usesPkce"] is False
    assert env.emulator.secret_matches("legacy-acme", "adopted-secret")
    assert len(env.emulator.clients()) == 1
    event = await env.wait_event("acme", "Adopted")
    assert "legacy-acme" in event["message"]


async def test_own_generated_id_is_adopted(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.create_secret("acme-idp", {"clientSecret": "current-secret"})
    await env.apply(env.client_manifest("acme", domains=["acme.com"]))
    created = await env.get("ssoclient", "acme")
    assert created is not None
    customer_id = generate_customer_id(created["metadata"]["uid"], ("acme.com",))
    # An earlier run created the sidecar client and crashed before it wrote the status.
    key = await env.emulator.mint_key()
    async with env.sidecar_api() as api:
        await api.create_oidc_client(SecretStr(key), legacy_request(customer_id, "stale-secret"))

    await started(env)

    await env.wait_condition("ssoclient", "acme")
    body = await env.get("ssoclient", "acme")
    assert body is not None
    assert body["status"]["customerId"] == customer_id
    client = env.sidecar_client(customer_id)
    assert client is not None
    assert client["displayName"] == "Acme"
    assert client["emailDomainAllowlist"] == ["acme.com"]
    assert env.emulator.secret_matches(customer_id, "current-secret")
    assert env.emulator.counters["CreateOidcClient"]["CustomerIdAlreadyTakenForEoidcClient"] == 1
    await env.wait_event("acme", "Adopted")
    assert all(e["type"] == "Normal" for e in await env.events("acme"))


# --- deactivation -----------------------------------------------------------------------------


async def test_deactivation_keeps_sidecar_client(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    body = await env.ready_client("acme", domains=["acme.com"])
    customer_id = body["status"]["customerId"]
    assert body["status"]["routed"] is True
    env.emulator.reset_counters()

    await env.apply(env.client_manifest("acme", domains=["acme.com"], active=False))

    await env.wait_condition("ssoclient", "acme")

    async def inactive_route() -> bool:
        table = await env.routing_table()
        route = ((table or {}).get("domains") or {}).get("acme.com") or {}
        return route.get("active") is False

    await wait_for(inactive_route, description="acme.com to leave the active set")
    after = await env.get("ssoclient", "acme")
    assert after is not None
    assert after["status"]["routed"] is False
    assert env.sidecar_client(customer_id) is not None
    assert "DeleteOidcClient" not in env.emulator.counters
    assert "PatchOidcClient" not in env.emulator.counters


async def test_reactivation_is_instant(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    body = await env.ready_client("acme", domains=["acme.com"], active=False)
    customer_id = body["status"]["customerId"]
    assert env.sidecar_client(customer_id) is not None
    env.emulator.reset_counters()

    await env.apply(env.client_manifest("acme", domains=["acme.com"]))

    async def active_route() -> bool:
        table = await env.routing_table()
        route = ((table or {}).get("domains") or {}).get("acme.com") or {}
        return route.get("active") is True

    await wait_for(active_route, timeout=10, description="acme.com to join the active set")
    after = await env.get("ssoclient", "acme")
    assert after is not None
    assert after["status"]["routed"] is True
    assert "CreateOidcClient" not in env.emulator.counters
    assert "PatchOidcClient" not in env.emulator.counters
