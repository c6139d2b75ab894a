"""Secret hygiene: no secret value shows up anywhere the operator writes or logs.

One run takes distinctive secrets through every path, failures included. The paths are a setup
secret that is too short and one that is rejected, initial setup, and client secrets sent while
the sidecar fails now and then. Then come a client the sidecar rejects, a rotated secret, a
rejected integration key, and a deletion. Afterwards the operator's DEBUG log, the events, the
objects (statuses and annotations), the ConfigMaps and the emulator's request log are searched
for every value, as plain text and base64-encoded.
"""

from __future__ import annotations

import base64
import json
import secrets

import pytest

from propelauth_emulator.metrics import INJECTED_ERROR
from tests.faults.helpers import client_with_secret
from tests.fixtures.operator import OperatorEnv, wait_for


def _distinctive(label: str) -> str:
    return f"{label}-{secrets.token_hex(12)}"


async def test_no_secret_in_logs_events_or_objects(
    operator_env: OperatorEnv, record_property: pytest.RecordProperty
) -> None:
    env = operator_env
    watched: dict[str, str] = {"setup secret": env.setup_secret}
    await env.start_operator()

    # Setup secrets: too short, rejected, then right; initial setup mints the key.
    short = f"sh{secrets.token_hex(5)}"
    watched["short setup secret"] = short
    await env.create_secret("setup", {"setupSecret": short})
    await env.apply(
        env.settings_manifest(sidecar={"setupSecretRef": {"name": "setup", "key": "setupSecret"}})
    )
    await env.wait_condition(
        "experioauthsettings", "experio", status="False", reason="SetupSecretTooShort"
    )
    wrong = _distinctive("wrong-setup")
    watched["wrong setup secret"] = wrong
    await env.create_secret("setup", {"setupSecret": wrong})
    await env.wait_condition(
        "experioauthsettings", "experio", status="False", reason="SetupSecretRejected"
    )
    await env.create_secret("setup", {"setupSecret": env.setup_secret})
    await env.wait_condition("experioauthsettings", "experio")
    key = await env.read_secret("propelauth-api-key", "apiKey")
    assert key
    watched["integration key"] = key

    # Client secrets, sent while a third of the requests fail or are dropped.
    env.emulator.set_faults(error_rate=0.3, drop_rate=0.1, drop_after_command=True, seed=7)
    manifests = []
    for index in range(4):
        name = f"hygiene-{index}"
        value = _distinctive(f"client-secret-{index}")
        watched[f"client secret {index}"] = value
        manifests += client_with_secret(env, name, value, domains=[f"{name}.example.com"])
    rejected = _distinctive("rejected-client-secret")
    watched["client secret of the rejected client"] = rejected
    manifests += client_with_secret(
        env,
        "rejected",
        rejected,
        domains=["rejected.example.com"],
        idp={
            "type": "Generic",
            "clientId": "rejected-client-id",
            "authUrl": "https://idp.example.com:99999/authorize",
            "tokenUrl": "https://idp.example.com/token",
            "userinfoUrl": "https://idp.example.com/userinfo",
        },
    )
    await env.apply(*manifests)

    async def some_injected_errors() -> bool:
        return sum(1 for r in env.emulator.request_log if r.outcome == INJECTED_ERROR) >= 2

    await wait_for(some_injected_errors, timeout=30, description="injected errors")
    env.emulator.clear_faults()
    for index in range(4):
        await env.wait_condition("ssoclient", f"hygiene-{index}", timeout=30)
    await env.wait_condition("ssoclient", "rejected", status="False", reason="InvalidFields")

    # A rotated client secret.
    rotated = _distinctive("rotated-client-secret")
    watched["rotated client secret"] = rotated
    await env.create_secret("hygiene-0-idp", {"clientSecret": rotated})
    body = await env.get("ssoclient", "hygiene-0")
    assert body is not None
    customer_id = body["status"]["customerId"]

    async def rotation_applied() -> bool:
        return env.emulator.secret_matches(customer_id, rotated)

    await wait_for(rotation_applied, timeout=15, description="the rotated secret")

    # A rejected integration key, then the real one again.
    bogus = _distinctive("bogus-integration-key")
    watched["rejected integration key"] = bogus
    await env.create_secret("propelauth-api-key", {"apiKey": bogus})
    await env.wait_condition(
        "experioauthsettings", "experio", status="False", reason="Unauthorized"
    )
    await env.create_secret("propelauth-api-key", {"apiKey": key})
    await env.wait_condition("experioauthsettings", "experio")

    # A deletion.
    await env.delete("ssoclient", "hygiene-1")
    await env.wait_gone("ssoclient", "hygiene-1")

    # Search everything the operator wrote or logged.
    places = {
        "operator log": env.operator_logs(),
        "events": await env.kubectl("get", "events", "-o", "json"),
        "SSOClients": await env.kubectl("get", "ssoclients", "-o", "json"),
        "ExperioAuthSettings": await env.kubectl("get", "experioauthsettings", "-o", "json"),
        "ConfigMaps": await env.kubectl("get", "configmaps", "-o", "json"),
        "emulator request log": json.dumps([r.to_wire() for r in env.emulator.request_log]),
    }
    sizes = {place: len(text) for place, text in places.items()}
    print(f"\nsecret hygiene: searched {len(watched)} secrets in {sizes} characters")
    record_property("searched_characters", sum(sizes.values()))
    # The texts are the real ones: the log is at DEBUG and the objects name their Secrets.
    assert "DEBUG" in places["operator log"]
    assert "hygiene-0-idp" in places["SSOClients"]
    leaks = []
    for what, value in watched.items():
        encoded = base64.b64encode(value.encode()).decode()
        for place, text in places.items():
            if value in text or encoded in text:
                leaks.append(f"{what} in {place}")
    assert not leaks
