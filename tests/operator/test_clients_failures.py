"""End-to-end tests of SSOClient failures: each reason on Ready, its message, and the recovery."""

from __future__ import annotations

import pytest

from tests.fixtures.operator import OperatorEnv

pytestmark = pytest.mark.cluster

# A syntactically valid Okta domain of 255 characters: four labels of 63 characters. The CRD
# accepts it (its length limit counts an optional https:// and trailing slash), but a DNS name
# is at most 253 characters, so the sidecar rejects it.
OVERLONG_OKTA_DOMAIN = ".".join(["a" * 63, "b" * 63, "c" * 63, "okta" + "d" * 59])


async def started(env: OperatorEnv) -> OperatorEnv:
    await env.start_operator()
    await env.ready_settings()
    return env


async def test_missing_secret_then_created(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    await env.apply(env.client_manifest("acme", domains=["acme.com"]))

    ready = await env.wait_condition("ssoclient", "acme", status="False", reason="SecretNotFound")
    assert "spec.identityProvider.clientSecretRef" in ready["message"]
    assert "'acme-idp'" in ready["message"]
    await env.wait_condition("ssoclient", "acme", type_="Stalled")
    event = await env.wait_event("acme", "SecretNotFound")
    assert event["type"] == "Warning"
    assert env.emulator.clients() == []

    await env.create_secret("acme-idp", {"clientSecret": "late-secret"})

    await env.wait_condition("ssoclient", "acme", reason="Synced")
    body = await env.get("ssoclient", "acme")
    assert body is not None
    assert env.emulator.secret_matches(body["status"]["customerId"], "late-secret")
    assert await env.condition("ssoclient", "acme", "Stalled") is None


async def test_missing_secret_key_then_added(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    await env.create_secret("acme-idp", {"wrongKey": "value"})
    await env.apply(env.client_manifest("acme", domains=["acme.com"]))

    ready = await env.wait_condition("ssoclient", "acme", status="False", reason="SecretKeyMissing")
    assert "spec.identityProvider.clientSecretRef" in ready["message"]
    assert "'clientSecret'" in ready["message"]
    await env.wait_condition("ssoclient", "acme", type_="Stalled")

    await env.create_secret("acme-idp", {"clientSecret": "added-secret"})

    await env.wait_condition("ssoclient", "acme", reason="Synced")
    body = await env.get("ssoclient", "acme")
    assert body is not None
    assert env.emulator.secret_matches(body["status"]["customerId"], "added-secret")


async def test_missing_settings_then_applied(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.start_operator()
    await env.create_secret("acme-idp", {"clientSecret": "acme-secret"})
    await env.apply(env.client_manifest("acme", domains=["acme.com"]))

    ready = await env.wait_condition("ssoclient", "acme", status="False", reason="SettingsNotFound")
    assert "ExperioAuthSettings" in ready["message"]
    assert env.namespace in ready["message"]

    await env.ready_settings()

    await env.wait_condition("ssoclient", "acme", reason="Synced")
    body = await env.get("ssoclient", "acme")
    assert body is not None
    assert env.sidecar_client(body["status"]["customerId"]) is not None


async def test_sidecar_invalid_fields(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    idp = {"type": "Okta", "clientId": "okta-client", "ssoDomain": OVERLONG_OKTA_DOMAIN}
    await env.create_secret("acme-idp", {"clientSecret": "acme-secret"})

    await env.apply(env.client_manifest("acme", domains=["acme.com"], idp=idp))

    ready = await env.wait_condition("ssoclient", "acme", status="False", reason="InvalidFields")
    assert "idpInfoFromCustomer.ssoDomain" in ready["message"]
    assert "invalid_domain" in ready["message"]
    await env.wait_condition("ssoclient", "acme", type_="Stalled")
    assert env.emulator.clients() == []

    fixed = {"type": "Okta", "clientId": "okta-client", "ssoDomain": "acme.okta.com"}
    await env.apply(env.client_manifest("acme", domains=["acme.com"], idp=fixed))
    await env.wait_condition("ssoclient", "acme", reason="Synced")


async def test_rejected_key_is_unauthorized(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.start_operator()
    key = await env.ready_settings()
    await env.emulator.revoke_key(key)
    await env.create_secret("acme-idp", {"clientSecret": "acme-secret"})

    await env.apply(env.client_manifest("acme", domains=["acme.com"]))

    ready = await env.wait_condition("ssoclient", "acme", status="False", reason="Unauthorized")
    assert "spec.sidecar.apiKeySecretRef" in ready["message"]
    await env.wait_condition("ssoclient", "acme", type_="Stalled")
    assert env.emulator.clients() == []
    # The client's rejected call makes the settings verify the key again at once, instead of
    # at their next periodic check minutes later.
    await env.wait_condition(
        "experioauthsettings", "experio", status="False", reason="Unauthorized", timeout=10
    )

    # A valid key in the API key Secret heals the client without any change to it.
    await env.create_secret("propelauth-api-key", {"apiKey": await env.emulator.mint_key()})

    await env.wait_condition("ssoclient", "acme", reason="Synced")
    assert len(env.emulator.clients()) == 1


async def test_sidecar_outage_then_recovery(operator_env: OperatorEnv) -> None:
    env = await started(operator_env)
    body = await env.ready_client("acme", domains=["acme.com"])
    customer_id = body["status"]["customerId"]

    env.emulator.set_faults(outage=True)
    await env.apply(env.client_manifest("acme", domains=["acme.com"], displayName="Acme Corp"))

    ready = await env.wait_condition(
        "ssoclient", "acme", status="False", reason="SidecarUnavailable"
    )
    assert customer_id in ready["message"] or env.emulator.url in ready["message"]
    await env.wait_condition("ssoclient", "acme", type_="Reconciling")
    assert await env.condition("ssoclient", "acme", "Stalled") is None
    await env.wait_event("acme", "SidecarUnavailable")

    env.emulator.clear_faults()

    await env.wait_condition("ssoclient", "acme", reason="Synced")
    client = env.sidecar_client(customer_id)
    assert client is not None
    assert client["displayName"] == "Acme Corp"
    assert await env.condition("ssoclient", "acme", "Reconciling") is None
