"""End-to-end tests of SSOClient sync: create per IdP type, status, patch, replace, secret rotation.

Each test runs the operator as a subprocess against the control plane and the sidecar emulator,
and checks what the sidecar stores, what the status reports and which events were posted.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from experio_sso.resources import generate_customer_id
from tests.fixtures.operator import OperatorEnv, wait_for

REDIRECT_URL = "https://experio.example.com/api/auth/sso/callback"
TENANT_ID = "11111111-2222-3333-4444-555555555555"
# The Secret watch queues the client at once, so a rotation must reach the sidecar in seconds.
ROTATION_TIMEOUT = 10.0

pytestmark = pytest.mark.cluster


def entra(client_id: str = "entra-client-id", **extra: Any) -> dict[str, Any]:
    return {"type": "MicrosoftEntra", "clientId": client_id, "tenantId": TENANT_ID, **extra}


async def started(env: OperatorEnv) -> OperatorEnv:
    await env.start_operator()
    await env.ready_settings()
    return env


async def test_entra_client_lands_in_sidecar(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    body = await env.ready_client(
        "acme",
        client_secret="entra-secret",
        domains=["acme.com", "acme.org"],
        idp=entra(usesPkce=True),
        additionalScopes=["groups", "offline_access"],
    )

    status = body["status"]
    customer_id = status["customerId"]
    assert customer_id == generate_customer_id(body["metadata"]["uid"], ("acme.com", "acme.org"))
    assert re.fullmatch(r"acme-com-[0-9a-f]{8}", customer_id)

    client = await env.wait_sidecar_client(customer_id)
    assert client["displayName"] == "Acme"
    assert client["redirectUrl"] == REDIRECT_URL
    assert client["emailDomainAllowlist"] == ["acme.com", "acme.org"]
    assert client["additionalScopes"] == ["groups", "offline_access"]
    assert client["idpInfoFromCustomer"] == {
        "idpType": "MicrosoftEntra",
        "clientId": "entra-client-id",
        "tenantId": TENANT_ID,
        "usesPkce": True,
    }
    assert env.emulator.secret_matches(customer_id, "entra-secret")
    assert not env.emulator.secret_matches(customer_id, "another-secret")


async def test_okta_domain_is_stripped(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    body = await env.ready_client(
        "okta",
        client_secret="okta-secret",
        domains=["okta-customer.com"],
        idp={"type": "Okta", "clientId": "okta-client", "ssoDomain": "https://dev-123.okta.com/"},
    )

    customer_id = body["status"]["customerId"]
    client = await env.wait_sidecar_client(customer_id)
    assert client["idpInfoFromCustomer"] == {
        "idpType": "Okta",
        "clientId": "okta-client",
        "ssoDomain": "dev-123.okta.com",
        "usesPkce": False,
    }
    assert client["emailDomainAllowlist"] == ["okta-customer.com"]
    assert client["additionalScopes"] == []
    assert env.emulator.secret_matches(customer_id, "okta-secret")


async def test_generic_allow_all_client(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    idp = {
        "type": "Generic",
        "clientId": "generic-client",
        "authUrl": "https://idp.example.net/authorize",
        "tokenUrl": "https://idp.example.net/token",
        "userinfoUrl": "https://idp.example.net/userinfo",
        "usesPkce": True,
    }
    body = await env.ready_client("generic", client_secret="generic-secret", idp=idp)

    status = body["status"]
    customer_id = status["customerId"]
    assert re.fullmatch(r"allow-all-[0-9a-f]{8}", customer_id)
    assert status["allowAllDomains"] is True
    assert status["domains"] == "Allow all domains"

    client = await env.wait_sidecar_client(customer_id)
    assert client["emailDomainAllowlist"] == []
    assert client["idpInfoFromCustomer"] == {
        "idpType": "Generic",
        "clientId": "generic-client",
        "authUrl": "https://idp.example.net/authorize",
        "tokenUrl": "https://idp.example.net/token",
        "userinfoUrl": "https://idp.example.net/userinfo",
        "usesPkce": True,
    }
    assert env.emulator.secret_matches(customer_id, "generic-secret")


async def test_status_of_synced_client(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    body = await env.ready_client("acme", client_secret="status-secret", domains=["acme.com"])

    status = body["status"]
    secret = await env.get("secret", "acme-idp")
    assert secret is not None
    assert status["observedGeneration"] == body["metadata"]["generation"]
    assert status["redirectUrl"] == REDIRECT_URL
    assert status["allowAllDomains"] is False
    assert status["domains"] == "acme.com"
    assert status["lastSyncTime"]
    assert status["appliedClientSecret"] == {
        "name": "acme-idp",
        "key": "clientSecret",
        "uid": secret["metadata"]["uid"],
        "resourceVersion": secret["metadata"]["resourceVersion"],
    }
    ready = await env.condition("ssoclient", "acme")
    assert ready is not None
    assert ready["reason"] == "Synced"
    assert await env.condition("ssoclient", "acme", "Reconciling") is None
    assert await env.condition("ssoclient", "acme", "Stalled") is None

    # The secret value must not appear anywhere in the object or its events.
    assert "status-secret" not in json.dumps(body)
    assert "status-secret" not in json.dumps(await env.events("acme"))
    created = await env.wait_event("acme", "Created")
    assert status["customerId"] in created["message"]
    assert created["type"] == "Normal"


async def test_display_name_change_is_patched(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    body = await env.ready_client("acme", domains=["acme.com"])
    customer_id = body["status"]["customerId"]
    env.emulator.reset_counters()

    await env.apply(env.client_manifest("acme", domains=["acme.com"], displayName="Acme Corp"))

    client = await env.wait_sidecar_client(
        customer_id, lambda c: c.get("displayName") == "Acme Corp", description="new name"
    )
    assert client["idpInfoFromCustomer"]["clientId"] == "acme-client-id"
    await env.wait_condition("ssoclient", "acme")
    updated = await env.wait_event("acme", "Updated")
    assert "displayName" in updated["message"]
    assert env.emulator.counters.get("PatchOidcClient", {}).get("ok") == 1
    assert "CreateOidcClient" not in env.emulator.counters
    assert "DeleteOidcClient" not in env.emulator.counters
    after = await env.get("ssoclient", "acme")
    assert after is not None
    assert after["status"]["customerId"] == customer_id


async def test_domain_change_keeps_customer_id(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    body = await env.ready_client("acme", domains=["acme.com"])
    customer_id = body["status"]["customerId"]

    await env.apply(env.client_manifest("acme", domains=["beta.com", "acme.com"]))

    client = await env.wait_sidecar_client(
        customer_id,
        lambda c: sorted(c["emailDomainAllowlist"]) == ["acme.com", "beta.com"],
        description="new allowlist",
    )
    assert client["customerId"] == customer_id
    await env.wait_condition("ssoclient", "acme")
    after = await env.get("ssoclient", "acme")
    assert after is not None
    assert after["status"]["customerId"] == customer_id
    assert after["status"]["domains"] == "beta.com, acme.com"
    assert len(env.emulator.clients()) == 1


async def test_removing_all_domains_keeps_customer_id(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    body = await env.ready_client("acme", domains=["acme.com"])
    customer_id = body["status"]["customerId"]

    await env.apply(env.client_manifest("acme"))

    await env.wait_sidecar_client(
        customer_id, lambda c: c["emailDomainAllowlist"] == [], description="empty allowlist"
    )
    await env.wait_condition("ssoclient", "acme")
    after = await env.get("ssoclient", "acme")
    assert after is not None
    assert after["status"]["customerId"] == customer_id
    assert after["status"]["allowAllDomains"] is True
    assert after["status"]["domains"] == "Allow all domains"


async def test_client_id_change_replaces(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    body = await env.ready_client("acme", client_secret="kept-secret", domains=["acme.com"])
    customer_id = body["status"]["customerId"]
    env.emulator.reset_counters()

    await env.apply(env.client_manifest("acme", domains=["acme.com"], idp=entra("new-client-id")))

    client = await env.wait_sidecar_client(
        customer_id,
        lambda c: c["idpInfoFromCustomer"]["clientId"] == "new-client-id",
        description="new client ID",
    )
    assert client["displayName"] == "Acme"
    assert env.emulator.secret_matches(customer_id, "kept-secret")
    replaced = await env.wait_event("acme", "Replaced")
    assert customer_id in replaced["message"]
    assert env.emulator.counters["DeleteOidcClient"]["ok"] == 1
    assert env.emulator.counters["CreateOidcClient"]["ok"] == 1
    await env.wait_condition("ssoclient", "acme")
    after = await env.get("ssoclient", "acme")
    assert after is not None
    assert after["status"]["customerId"] == customer_id


async def test_idp_type_change_replaces(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    body = await env.ready_client("acme", client_secret="kept-secret", domains=["acme.com"])
    customer_id = body["status"]["customerId"]

    okta = {"type": "Okta", "clientId": "acme-client-id", "ssoDomain": "acme.okta.com"}
    await env.apply(env.client_manifest("acme", domains=["acme.com"], idp=okta))

    client = await env.wait_sidecar_client(
        customer_id,
        lambda c: c["idpInfoFromCustomer"]["idpType"] == "Okta",
        description="Okta client",
    )
    assert client["idpInfoFromCustomer"] == {
        "idpType": "Okta",
        "clientId": "acme-client-id",
        "ssoDomain": "acme.okta.com",
        "usesPkce": False,
    }
    assert env.emulator.secret_matches(customer_id, "kept-secret")
    await env.wait_event("acme", "Replaced")
    await env.wait_condition("ssoclient", "acme")


async def test_rotated_secret_reaches_sidecar(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    body = await env.ready_client("acme", client_secret="first-secret", domains=["acme.com"])
    customer_id = body["status"]["customerId"]
    assert env.emulator.secret_matches(customer_id, "first-secret")

    await env.create_secret("acme-idp", {"clientSecret": "second-secret"})

    async def rotated() -> bool:
        return env.emulator.secret_matches(customer_id, "second-secret")

    await wait_for(rotated, timeout=ROTATION_TIMEOUT, description="the new secret in the sidecar")
    secret = await env.get("secret", "acme-idp")
    assert secret is not None

    async def recorded() -> bool:
        current = await env.get("ssoclient", "acme")
        applied = ((current or {}).get("status") or {}).get("appliedClientSecret") or {}
        return bool(applied.get("resourceVersion") == secret["metadata"]["resourceVersion"])

    await wait_for(recorded, timeout=ROTATION_TIMEOUT, description="the new Secret version")
    updated = await env.wait_event("acme", "Updated")
    assert "clientSecret" in updated["message"]
    assert "second-secret" not in json.dumps(await env.events("acme"))
