"""End-to-end tests of ExperioAuthSettings: the integration key, from initial setup to Ping.

Each test runs the operator as a subprocess against the test control plane and the sidecar
emulator on loopback, and checks what an administrator would see: conditions, events, the API
key Secret, and the requests the emulator counted. The rendered ConfigMap, login modes,
conflicts, condition conventions and restarts are in ``test_settings_output.py``, which
imports the helpers defined here.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from propelauth_emulator import EmulatorServer
from tests.fixtures.operator import OperatorEnv, wait_for
from tests.support.control_plane import free_port

SETTINGS = "experioauthsettings"
API_KEY_SECRET = "propelauth-api-key"
SETUP_SECRET = "sidecar-setup"
SETUP_SECRET_REF = {"setupSecretRef": {"name": SETUP_SECRET, "key": "setupSecret"}}
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"

# Commands that change the sidecar's clients; a pass over objects in sync sends none of them.
WRITE_COMMANDS = ("CreateOidcClient", "PatchOidcClient", "DeleteOidcClient")
# Every command except Ping, for a key that cannot verify itself.
COMMANDS_WITHOUT_PING = (
    "CreateOidcClient",
    "FetchOidcClient",
    "PatchOidcClient",
    "DeleteOidcClient",
)


# --- helpers shared with test_settings_output.py ----------------------------------------------


def conditions_of(body: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Return an object's status conditions by type."""
    items = ((body or {}).get("status") or {}).get("conditions") or []
    return {item["type"]: item for item in items}


async def wait_settings(
    env: OperatorEnv,
    name: str = "experio",
    *,
    status: str = "True",
    reason: str | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Wait for the settings' Ready condition; return the whole object."""
    await env.wait_condition(SETTINGS, name, status=status, reason=reason, timeout=timeout)
    body = await env.get(SETTINGS, name)
    assert body is not None
    return body


def command_count(env: OperatorEnv, command: str, outcome: str = "ok") -> int:
    """Return how many requests for ``command`` the emulator completed with ``outcome``."""
    return env.emulator.counters.get(command, {}).get(outcome, 0)


async def wait_commands(
    env: OperatorEnv, command: str, count: int, outcome: str = "ok", timeout: float = 30.0
) -> None:
    """Wait until the emulator completed ``count`` requests for ``command`` with ``outcome``."""

    async def probe() -> bool:
        return command_count(env, command, outcome) >= count

    await wait_for(
        probe, timeout=timeout, description=f"{count} {command} request(s) with outcome {outcome}"
    )


async def wait_past(timestamp: str) -> None:
    """Wait until the wall clock is a whole second past an RFC 3339 timestamp.

    Condition times have a resolution of one second, so a test that checks that a time was
    kept must let the clock move on first, or an overwritten time would look the same.
    """
    moment = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.UTC
    )

    async def probe() -> bool:
        return datetime.datetime.now(datetime.UTC) >= moment + datetime.timedelta(seconds=1)

    await wait_for(probe, timeout=5.0, description=f"the clock to pass {timestamp}")


async def event_reasons(env: OperatorEnv, name: str) -> list[str]:
    """Return the reasons of the events about the object ``name``."""
    output = await env.kubectl(
        "get",
        "events",
        "--field-selector",
        f"involvedObject.name={name}",
        "-o",
        "jsonpath={range .items[*]}{.reason}{'\\n'}{end}",
    )
    return output.split()


async def restart_operator(env: OperatorEnv, *extra: str) -> None:
    """Stop every running operator, clear the emulator's counters, start a new operator."""
    for operator in env.operators:
        await operator.stop()
    env.emulator.reset_counters()
    await env.start_operator(*extra)


# --- initial setup ------------------------------------------------------------------------------


async def test_initial_setup_stores_key(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.create_secret(SETUP_SECRET, {"setupSecret": env.setup_secret})
    await env.apply(env.settings_manifest(sidecar=SETUP_SECRET_REF))
    await env.start_operator()

    body = await wait_settings(env)
    assert env.emulator.initial_setup_calls == 1
    assert env.emulator.initial_setup_done

    secret = await env.get("secret", API_KEY_SECRET)
    assert secret is not None
    assert "ownerReferences" not in secret["metadata"]
    assert secret["metadata"]["labels"][MANAGED_BY_LABEL] == "experio-sso-operator"
    key = await env.read_secret(API_KEY_SECRET, "apiKey")
    assert key
    assert command_count(env, "Ping") >= 1
    assert "InitialSetupDone" in await event_reasons(env, "experio")
    assert body["status"]["conditions"][0]["reason"] == "Synced"

    # The stored key is the sidecar's: a client can be created with it right away.
    client = await env.ready_client("acme", domains=["acme.com"])
    assert env.sidecar_client(client["status"]["customerId"]) is not None

    # A second start reads the stored key; Ping proves it got past the key lookup.
    await restart_operator(env)
    await wait_commands(env, "Ping", 1)
    await wait_settings(env)
    assert env.emulator.initial_setup_calls == 0
    assert await env.read_secret(API_KEY_SECRET, "apiKey") == key
    stored_again = await env.get("secret", API_KEY_SECRET)
    assert stored_again is not None
    assert stored_again["metadata"]["resourceVersion"] == secret["metadata"]["resourceVersion"]

    # Neither the setup secret nor the minted key reaches the operator's DEBUG log.
    logs = env.operator_logs()
    assert env.setup_secret not in logs
    assert key not in logs


async def test_initial_setup_custom_secret_ref(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.create_secret(SETUP_SECRET, {"setupSecret": env.setup_secret})
    sidecar = {
        **SETUP_SECRET_REF,
        "apiKeySecretRef": {"name": "sso-integration", "key": "integrationKey"},
    }
    await env.apply(env.settings_manifest(sidecar=sidecar))
    await env.start_operator()

    await wait_settings(env)
    assert env.emulator.initial_setup_calls == 1
    assert await env.read_secret("sso-integration", "integrationKey")
    assert await env.get("secret", API_KEY_SECRET) is None


async def test_minted_key_stored_before_ping(operator_env: OperatorEnv) -> None:
    env = operator_env
    # Ping fails, initial setup does not: the key must be in its Secret before any check.
    env.emulator.set_faults(outage=True, commands=["Ping"])
    await env.create_secret(SETUP_SECRET, {"setupSecret": env.setup_secret})
    await env.apply(env.settings_manifest(sidecar=SETUP_SECRET_REF))
    await env.start_operator()

    await wait_settings(env, status="False", reason="SidecarUnavailable")
    assert env.emulator.initial_setup_calls == 1
    key = await env.read_secret(API_KEY_SECRET, "apiKey")
    assert key

    # The retries use the stored key instead of calling initial setup again.
    env.emulator.clear_faults()
    await wait_settings(env, timeout=20.0)
    assert env.emulator.initial_setup_calls == 1
    assert await env.read_secret(API_KEY_SECRET, "apiKey") == key


async def test_present_key_skips_initial_setup(operator_env: OperatorEnv) -> None:
    env = operator_env
    key = await env.emulator.mint_key()
    await env.create_secret(API_KEY_SECRET, {"apiKey": key})
    await env.create_secret(SETUP_SECRET, {"setupSecret": env.setup_secret})
    before = await env.get("secret", API_KEY_SECRET)
    assert before is not None
    await env.apply(env.settings_manifest(sidecar=SETUP_SECRET_REF))
    await env.start_operator()

    await wait_settings(env)
    assert env.emulator.initial_setup_calls == 0
    assert not env.emulator.initial_setup_done
    assert await env.read_secret(API_KEY_SECRET, "apiKey") == key
    after = await env.get("secret", API_KEY_SECRET)
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def _run_initial_setup_elsewhere(env: OperatorEnv) -> None:
    """Run the sidecar's initial setup as another installation would, over HTTP."""
    async with httpx.AsyncClient(base_url=env.emulator.url) as http:
        response = await http.post("/api/initial_setup", json={"setupSecret": env.setup_secret})
    assert response.status_code == 200
    env.emulator.reset_counters()


@pytest.mark.parametrize(
    ("case", "reason", "field", "setup_calls"),
    [
        pytest.param("too-short", "SetupSecretTooShort", "setupSecretRef", 0, id="too-short"),
        pytest.param("wrong", "SetupSecretRejected", "setupSecretRef", 1, id="rejected"),
        pytest.param(
            "already-used", "InitialSetupAlreadyDone", "apiKeySecretRef", 1, id="already-done"
        ),
    ],
)
async def test_setup_secret_failures(
    operator_env: OperatorEnv, case: str, reason: str, field: str, setup_calls: int
) -> None:
    env = operator_env
    setup_secret = {
        "too-short": "fifteen-chars!!",
        "wrong": secrets.token_urlsafe(24),
        "already-used": env.setup_secret,
    }[case]
    assert (len(setup_secret) < 16) == (case == "too-short")
    if case == "already-used":
        await _run_initial_setup_elsewhere(env)
    await env.create_secret(SETUP_SECRET, {"setupSecret": setup_secret})
    await env.apply(env.settings_manifest(sidecar=SETUP_SECRET_REF))
    await env.start_operator()

    body = await wait_settings(env, status="False", reason=reason)
    conditions = conditions_of(body)
    message = conditions["Ready"]["message"]
    assert f"spec.sidecar.{field}" in message
    # The manual fallback: a key from the sidecar dashboard, put into the API key Secret.
    assert "sidecar dashboard" in message
    assert f"Secret {API_KEY_SECRET!r}" in message
    assert setup_secret not in message
    assert conditions["Stalled"]["status"] == "True"
    assert "Reconciling" not in conditions
    assert await env.get("secret", API_KEY_SECRET) is None
    if setup_calls == 0:
        assert env.emulator.initial_setup_calls == 0
    else:
        assert env.emulator.initial_setup_calls >= setup_calls
    assert reason in await event_reasons(env, "experio")


async def test_setup_secret_not_found(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.apply(env.settings_manifest(sidecar=SETUP_SECRET_REF))
    await env.start_operator()

    body = await wait_settings(env, status="False", reason="SecretNotFound")
    conditions = conditions_of(body)
    assert "spec.sidecar.setupSecretRef" in conditions["Ready"]["message"]
    assert repr(SETUP_SECRET) in conditions["Ready"]["message"]
    assert conditions["Stalled"]["status"] == "True"
    assert env.emulator.initial_setup_calls == 0

    await env.create_secret(SETUP_SECRET, {"setupSecret": env.setup_secret})
    await wait_settings(env)
    assert env.emulator.initial_setup_calls == 1


async def test_setup_secret_fixed_recovers(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.create_secret(SETUP_SECRET, {"setupSecret": secrets.token_urlsafe(24)})
    await env.apply(env.settings_manifest(sidecar=SETUP_SECRET_REF))
    await env.start_operator()
    await wait_settings(env, status="False", reason="SetupSecretRejected")

    await env.create_secret(SETUP_SECRET, {"setupSecret": env.setup_secret})

    await wait_settings(env)
    assert await env.read_secret(API_KEY_SECRET, "apiKey")
    assert env.emulator.initial_setup_done


# --- the API key Secret ---------------------------------------------------------------------


async def test_api_key_secret_not_found(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.apply(env.settings_manifest())
    operator = await env.start_operator()

    body = await wait_settings(env, status="False", reason="SecretNotFound")
    conditions = conditions_of(body)
    message = conditions["Ready"]["message"]
    assert "spec.sidecar.apiKeySecretRef" in message
    assert repr(API_KEY_SECRET) in message
    assert "sidecar dashboard" in message
    assert conditions["Stalled"]["status"] == "True"
    assert "Reconciling" not in conditions
    assert env.emulator.initial_setup_calls == 0

    # The Secret watch notices the new Secret; the same operator process turns Ready.
    key = await env.emulator.mint_key()
    await env.create_secret(API_KEY_SECRET, {"apiKey": key})
    body = await wait_settings(env)
    assert set(conditions_of(body)) == {"Ready"}
    assert operator.process is not None
    assert operator.process.returncode is None
    assert len(env.operators) == 1


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"otherKey": "unrelated"}, id="key-absent"),
        pytest.param({"apiKey": ""}, id="key-empty"),
    ],
)
async def test_api_key_missing_in_secret(operator_env: OperatorEnv, data: dict[str, str]) -> None:
    env = operator_env
    await env.create_secret(API_KEY_SECRET, data)
    await env.apply(env.settings_manifest())
    await env.start_operator()

    body = await wait_settings(env, status="False", reason="SecretKeyMissing")
    conditions = conditions_of(body)
    message = conditions["Ready"]["message"]
    assert "spec.sidecar.apiKeySecretRef" in message
    assert "'apiKey'" in message
    assert repr(API_KEY_SECRET) in message
    assert conditions["Stalled"]["status"] == "True"
    assert "Reconciling" not in conditions

    key = await env.emulator.mint_key()
    await env.create_secret(API_KEY_SECRET, {**data, "apiKey": key})
    body = await wait_settings(env)
    assert set(conditions_of(body)) == {"Ready"}
    assert len(env.operators) == 1


# --- verifying the key ------------------------------------------------------------------------


async def test_revoked_key_unauthorized(operator_env: OperatorEnv) -> None:
    env = operator_env
    # Ping re-verifies a Ready key once per drift interval; 5 s is the smallest allowed.
    operator = await env.start_operator("--drift-interval-seconds=5")
    key = await env.ready_settings()

    await env.emulator.revoke_key(key)

    body = await wait_settings(env, status="False", reason="Unauthorized")
    conditions = conditions_of(body)
    message = conditions["Ready"]["message"]
    assert "spec.sidecar.apiKeySecretRef" in message
    assert repr(API_KEY_SECRET) in message
    assert "sidecar dashboard" in message
    assert key not in message
    assert conditions["Stalled"]["status"] == "True"
    assert "Reconciling" not in conditions
    assert command_count(env, "Ping", "IntegrationKeyNotFound") >= 1
    assert "Unauthorized" in await event_reasons(env, "experio")

    new_key = await env.emulator.mint_key()
    await env.create_secret(API_KEY_SECRET, {"apiKey": new_key})
    body = await wait_settings(env)
    assert set(conditions_of(body)) == {"Ready"}
    logs = env.operator_logs()
    assert key not in logs
    assert new_key not in logs
    assert operator.process is not None
    assert operator.process.returncode is None
    assert len(env.operators) == 1


async def test_invalid_key_at_start_unauthorized(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.create_secret(API_KEY_SECRET, {"apiKey": "not-a-key-of-this-sidecar"})
    await env.apply(env.settings_manifest())
    await env.start_operator()

    body = await wait_settings(env, status="False", reason="Unauthorized")
    assert conditions_of(body)["Stalled"]["status"] == "True"
    assert "not-a-key-of-this-sidecar" not in conditions_of(body)["Ready"]["message"]


async def test_key_without_ping_not_allowed(operator_env: OperatorEnv) -> None:
    env = operator_env
    limited = await env.emulator.mint_key(commands=COMMANDS_WITHOUT_PING)
    await env.create_secret(API_KEY_SECRET, {"apiKey": limited})
    await env.apply(env.settings_manifest())
    await env.start_operator()

    body = await wait_settings(env, status="False", reason="CommandNotAllowed")
    conditions = conditions_of(body)
    assert "Ping" in conditions["Ready"]["message"]
    assert conditions["Stalled"]["status"] == "True"
    assert "Reconciling" not in conditions
    assert command_count(env, "Ping", "CommandNotAllowed") >= 1

    full = await env.emulator.mint_key()
    await env.create_secret(API_KEY_SECRET, {"apiKey": full})
    await wait_settings(env)


# --- an unreachable sidecar -------------------------------------------------------------------


async def test_closed_port_then_sidecar_starts(operator_env: OperatorEnv) -> None:
    env = operator_env
    # A second sidecar, stopped so that its port is closed. Its state file keeps the key
    # minted before the stop, so the key is valid once the sidecar starts again.
    port = free_port()
    late_sidecar = EmulatorServer(env.tmp_path / "late-sidecar.sqlite3", port=port)
    await late_sidecar.start()
    key = await late_sidecar.mint_key()
    await late_sidecar.stop()
    url = f"http://127.0.0.1:{port}"

    await env.create_secret(API_KEY_SECRET, {"apiKey": key})
    await env.apply(env.settings_manifest(sidecar={"url": url}))
    await env.start_operator()
    try:
        body = await wait_settings(env, status="False", reason="SidecarUnavailable")
        conditions = conditions_of(body)
        assert url in conditions["Ready"]["message"]
        assert conditions["Reconciling"]["status"] == "True"
        assert "Stalled" not in conditions

        # Retries back off to at most 5 s in tests, so the sidecar is found within that.
        await late_sidecar.start()
        body = await wait_settings(env, timeout=20.0)
        assert set(conditions_of(body)) == {"Ready"}
        assert late_sidecar.counters["Ping"]["ok"] >= 1
    finally:
        await late_sidecar.stop()


async def test_sidecar_outage_then_recovery(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.start_operator("--drift-interval-seconds=5")
    await env.ready_settings()

    env.emulator.set_faults(outage=True)
    body = await wait_settings(env, status="False", reason="SidecarUnavailable")
    conditions = conditions_of(body)
    assert env.emulator.url in conditions["Ready"]["message"]
    assert conditions["Reconciling"]["status"] == "True"
    assert "Stalled" not in conditions
    assert command_count(env, "Ping", "Outage") >= 1
    assert "SidecarUnavailable" in await event_reasons(env, "experio")

    env.emulator.clear_faults()
    body = await wait_settings(env, timeout=20.0)
    assert set(conditions_of(body)) == {"Ready"}


async def test_api_key_secret_deleted(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.start_operator()
    await env.ready_settings()

    await env.delete("secret", API_KEY_SECRET)

    body = await wait_settings(env, status="False", reason="SecretNotFound")
    assert conditions_of(body)["Stalled"]["status"] == "True"
    assert env.emulator.initial_setup_calls == 0

    await env.create_secret(API_KEY_SECRET, {"apiKey": await env.emulator.mint_key()})
    body = await wait_settings(env)
    assert set(conditions_of(body)) == {"Ready"}
