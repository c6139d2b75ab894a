"""First end-to-end check: initial setup, then one client in the sidecar."""

from __future__ import annotations

from tests.fixtures.operator import OperatorEnv, wait_for


async def test_initial_setup_then_client_ready(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.create_secret("sidecar-setup", {"setupSecret": env.setup_secret})
    await env.apply(
        env.settings_manifest(
            sidecar={"setupSecretRef": {"name": "sidecar-setup", "key": "setupSecret"}}
        )
    )
    await env.start_operator()

    await env.wait_condition("experioauthsettings", "experio")
    stored = await env.read_secret("propelauth-api-key", "apiKey")
    assert stored
    body = await env.ready_client("acme", domains=["acme.com"])

    customer_id = body["status"]["customerId"]
    assert customer_id.startswith("acme-com-")
    client = await wait_for(lambda: _fetch(env, customer_id), description="sidecar client")
    assert client["displayName"] == "Acme"
    assert env.emulator.secret_matches(customer_id, "acme-secret-value")


async def _fetch(env: OperatorEnv, customer_id: str) -> dict | None:
    return env.sidecar_client(customer_id)
