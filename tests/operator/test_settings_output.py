"""End-to-end tests of what ExperioAuthSettings publish, and how their status behaves.

Login modes and lockout protection, the ConfigMap ``experio-auth-settings`` with its routing
table, a second settings object in a namespace, the condition conventions that kstatus reads,
and an operator restart that must write nothing. The operator runs as a subprocess against
the test control plane and the sidecar emulator; see ``test_settings.py`` for the key checks.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures.operator import OperatorEnv, wait_for
from tests.operator.test_settings import (
    API_KEY_SECRET,
    SETTINGS,
    WRITE_COMMANDS,
    conditions_of,
    event_reasons,
    restart_operator,
    wait_commands,
    wait_past,
    wait_settings,
)
from tests.support.control_plane import free_port

CONFIGMAP = "experio-auth-settings"
CONFIGMAP_KEYS = {
    "USE_PROPELAUTH",
    "ALLOW_HYBRID_LOGIN",
    "PROPELAUTH_SSO_USERS_ACTIVE_BY_DEFAULT",
    "PROPELAUTH_AUTH_URL",
    "sso-routes.json",
}


async def configmap_data(env: OperatorEnv) -> dict[str, str]:
    body = await env.get("configmap", CONFIGMAP)
    assert body is not None, f"ConfigMap {CONFIGMAP} was not rendered"
    return dict(body.get("data") or {})


async def wait_published(
    env: OperatorEnv, effective: str, name: str = "experio"
) -> tuple[dict[str, Any], dict[str, str]]:
    """Wait until the settings publish ``effective``; return the settings and ConfigMap data.

    The status is written after the ConfigMap in the same pass, so once the status shows the
    mode, the ConfigMap already carries it.
    """

    async def probe() -> dict[str, Any] | None:
        body = await env.get(SETTINGS, name)
        status = (body or {}).get("status") or {}
        return body if status.get("effectiveLoginMode") == effective else None

    body = await wait_for(probe, description=f"effectiveLoginMode {effective}")
    assert body is not None
    return body, await configmap_data(env)


async def wait_routes(env: OperatorEnv, expected: dict[str, Any]) -> dict[str, str]:
    """Wait until ``sso-routes.json`` equals ``expected``; return the ConfigMap data."""

    async def probe() -> dict[str, str] | None:
        body = await env.get("configmap", CONFIGMAP)
        data = (body or {}).get("data") or {}
        routes = data.get("sso-routes.json")
        return data if routes and json.loads(routes) == expected else None

    data = await wait_for(probe, description=f"sso-routes.json equal to {expected}")
    assert data is not None
    return data


def route(client: dict[str, Any], active: bool = True) -> dict[str, Any]:
    """Return the routing table entry expected for an SSOClient object."""
    return {
        "client": client["metadata"]["name"],
        "customerId": client["status"]["customerId"],
        "active": active,
    }


# --- login modes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "login_mode", "effective", "use_propelauth", "allow_hybrid"),
    [
        pytest.param({}, "PasswordOnly", "PasswordOnly", "False", "False", id="password-only"),
        pytest.param(
            {"useSSO": True, "allowHybridLogin": True},
            "Hybrid",
            "Hybrid",
            "True",
            "True",
            id="hybrid",
        ),
        pytest.param(
            {"useSSO": True},
            "SSOOnly",
            "Hybrid",
            "True",
            "True",
            id="sso-only-held-back-without-clients",
        ),
        pytest.param(
            {"useSSO": True, "lockoutProtection": False},
            "SSOOnly",
            "SSOOnly",
            "True",
            "False",
            id="sso-only-without-lockout-protection",
        ),
    ],
)
async def test_login_mode_published(
    operator_env: OperatorEnv,
    spec: dict[str, Any],
    login_mode: str,
    effective: str,
    use_propelauth: str,
    allow_hybrid: str,
) -> None:
    env = operator_env
    await env.start_operator()
    await env.ready_settings(**spec)

    body, data = await wait_published(env, effective)
    assert body["status"]["loginMode"] == login_mode
    assert data["USE_PROPELAUTH"] == use_propelauth
    assert data["ALLOW_HYBRID_LOGIN"] == allow_hybrid
    held_back = login_mode != effective
    assert ("Lockout protection" in conditions_of(body)["Ready"]["message"]) == held_back


async def test_lockout_lifted_by_ready_client(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.start_operator()
    await env.ready_settings(useSSO=True)
    body, data = await wait_published(env, "Hybrid")
    assert body["status"]["loginMode"] == "SSOOnly"
    assert body["status"]["readyClients"] == 0
    assert data["ALLOW_HYBRID_LOGIN"] == "True"

    # An inactive client, even Ready, does not count: users could not log in through it.
    legacy = await env.ready_client("legacy", domains=["legacy.com"], active=False)
    await wait_routes(env, {"domains": {"legacy.com": route(legacy, False)}, "allowAll": None})
    body, data = await wait_published(env, "Hybrid")
    assert body["status"]["readyClients"] == 0
    assert data["ALLOW_HYBRID_LOGIN"] == "True"

    await env.ready_client("acme", domains=["acme.com"])
    body, data = await wait_published(env, "SSOOnly")
    assert body["status"]["loginMode"] == "SSOOnly"
    assert body["status"]["readyClients"] == 1
    assert data["USE_PROPELAUTH"] == "True"
    assert data["ALLOW_HYBRID_LOGIN"] == "False"
    assert "Lockout protection" not in conditions_of(body)["Ready"]["message"]

    # Deactivating the only active client brings the protection back.
    await env.apply(env.client_manifest("acme", domains=["acme.com"], active=False))
    body, data = await wait_published(env, "Hybrid")
    assert body["status"]["readyClients"] == 0
    assert data["ALLOW_HYBRID_LOGIN"] == "True"


async def test_lockout_returns_when_client_fails(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.start_operator()
    await env.ready_settings(useSSO=True)
    await env.ready_client("acme", domains=["acme.com"])
    await wait_published(env, "SSOOnly")

    # Without its client secret the only client is no longer Ready, so SSO-only is held back.
    await env.delete("secret", "acme-idp")
    await env.wait_condition("ssoclient", "acme", status="False", reason="SecretNotFound")
    body, data = await wait_published(env, "Hybrid")
    assert body["status"]["loginMode"] == "SSOOnly"
    assert body["status"]["readyClients"] == 0
    assert data["ALLOW_HYBRID_LOGIN"] == "True"

    await env.create_secret("acme-idp", {"clientSecret": "acme-secret-value"})
    body, data = await wait_published(env, "SSOOnly")
    assert data["ALLOW_HYBRID_LOGIN"] == "False"


# --- the rendered ConfigMap -------------------------------------------------------------------


async def test_configmap_content_and_owner(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.start_operator()
    await env.ready_settings(useSSO=True, allowHybridLogin=True, ssoUsersActiveByDefault=False)
    settings = await env.get(SETTINGS, "experio")
    assert settings is not None

    acme = await env.ready_client("acme", domains=["acme.com", "acme.org"])
    legacy = await env.ready_client("legacy", domains=["legacy.com"], active=False)
    fallback = await env.ready_client("fallback")
    expected = {
        "domains": {
            "acme.com": route(acme),
            "acme.org": route(acme),
            "legacy.com": route(legacy, active=False),
        },
        "allowAll": route(fallback),
    }
    data = await wait_routes(env, expected)

    assert set(data) == CONFIGMAP_KEYS
    assert data["USE_PROPELAUTH"] == "True"
    assert data["ALLOW_HYBRID_LOGIN"] == "True"
    assert data["PROPELAUTH_SSO_USERS_ACTIVE_BY_DEFAULT"] == "False"
    assert data["PROPELAUTH_AUTH_URL"] == env.emulator.url
    assert API_KEY_SECRET not in json.dumps(data)

    configmap = await env.get("configmap", CONFIGMAP)
    assert configmap is not None
    owners = configmap["metadata"]["ownerReferences"]
    assert len(owners) == 1
    assert owners[0]["apiVersion"] == "auth.experio.cloud/v1alpha1"
    assert owners[0]["kind"] == "ExperioAuthSettings"
    assert owners[0]["name"] == "experio"
    assert owners[0]["uid"] == settings["metadata"]["uid"]
    assert owners[0]["controller"] is True

    # A spec change is rendered into the same ConfigMap.
    await env.apply(
        env.settings_manifest(useSSO=True, allowHybridLogin=True, ssoUsersActiveByDefault=True)
    )

    async def active_by_default() -> bool:
        data = await configmap_data(env)
        return data["PROPELAUTH_SSO_USERS_ACTIVE_BY_DEFAULT"] == "True"

    await wait_for(active_by_default, description="PROPELAUTH_SSO_USERS_ACTIVE_BY_DEFAULT=True")
    updated = await env.get("configmap", CONFIGMAP)
    assert updated is not None
    assert updated["metadata"]["uid"] == configmap["metadata"]["uid"]


# --- a second settings object -----------------------------------------------------------------


async def test_second_settings_conflict(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.start_operator()
    # The older object sorts last by name, so only its age can make it win.
    await env.ready_settings("zeta")
    older = await env.get(SETTINGS, "zeta")
    assert older is not None
    older_ready = conditions_of(older)["Ready"]
    await wait_past(older["metadata"]["creationTimestamp"])

    await env.apply(env.settings_manifest("alpha", useSSO=True))

    younger = await wait_settings(env, "alpha", status="False", reason="SettingsConflict")
    conditions = conditions_of(younger)
    assert "'zeta'" in conditions["Ready"]["message"]
    assert conditions["Stalled"]["status"] == "True"
    assert "Reconciling" not in conditions
    assert "SettingsConflict" in await event_reasons(env, "alpha")
    older = await wait_settings(env, "zeta")
    assert conditions_of(older)["Ready"] == older_ready
    configmap = await env.get("configmap", CONFIGMAP)
    assert configmap is not None
    assert configmap["metadata"]["ownerReferences"][0]["name"] == "zeta"
    assert configmap["data"]["USE_PROPELAUTH"] == "False"

    await env.delete(SETTINGS, "zeta")
    await env.wait_gone(SETTINGS, "zeta")

    younger = await wait_settings(env, "alpha")
    assert set(conditions_of(younger)) == {"Ready"}

    async def owned_by_alpha() -> dict[str, Any] | None:
        body = await env.get("configmap", CONFIGMAP)
        owners = ((body or {}).get("metadata") or {}).get("ownerReferences") or []
        return body if owners and owners[0]["uid"] == younger["metadata"]["uid"] else None

    configmap = await wait_for(owned_by_alpha, description="ConfigMap owned by alpha")
    assert configmap is not None
    assert configmap["data"]["USE_PROPELAUTH"] == "True"


# --- condition conventions --------------------------------------------------------------------


def assert_generation_observed(body: dict[str, Any]) -> None:
    generation = body["metadata"]["generation"]
    assert body["status"]["observedGeneration"] == generation
    for condition in body["status"]["conditions"]:
        assert condition["observedGeneration"] == generation, condition["type"]


async def test_condition_conventions(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.apply(env.settings_manifest())
    await env.start_operator()

    # Stalled: Ready=False and Stalled=True, no Reconciling condition at all.
    body = await wait_settings(env, status="False", reason="SecretNotFound")
    missing = conditions_of(body)
    assert set(missing) == {"Ready", "Stalled"}
    assert missing["Stalled"]["status"] == "True"
    assert_generation_observed(body)

    # Another reason with the same status keeps the transition times.
    await wait_past(missing["Ready"]["lastTransitionTime"])
    await env.create_secret(API_KEY_SECRET, {"otherKey": "unrelated"})
    body = await wait_settings(env, status="False", reason="SecretKeyMissing")
    key_missing = conditions_of(body)
    assert set(key_missing) == {"Ready", "Stalled"}
    assert key_missing["Ready"]["lastTransitionTime"] == missing["Ready"]["lastTransitionTime"]
    assert key_missing["Stalled"]["lastTransitionTime"] == missing["Stalled"]["lastTransitionTime"]

    # Ready: only the Ready condition is left, with a new transition time.
    await wait_past(key_missing["Ready"]["lastTransitionTime"])
    await env.create_secret(API_KEY_SECRET, {"apiKey": await env.emulator.mint_key()})
    body = await wait_settings(env)
    ready = conditions_of(body)
    assert set(ready) == {"Ready"}
    assert ready["Ready"]["reason"] == "Synced"
    assert ready["Ready"]["lastTransitionTime"] > key_missing["Ready"]["lastTransitionTime"]
    assert_generation_observed(body)

    # A new generation that stays Ready keeps the transition time and is observed.
    await wait_past(ready["Ready"]["lastTransitionTime"])
    await env.apply(env.settings_manifest(ssoUsersActiveByDefault=False))
    body = await wait_settings(env)
    assert body["metadata"]["generation"] == 2
    assert_generation_observed(body)
    assert (
        conditions_of(body)["Ready"]["lastTransitionTime"] == ready["Ready"]["lastTransitionTime"]
    )

    # Retrying: Ready=False and Reconciling=True, no Stalled condition at all.
    closed_url = f"http://127.0.0.1:{free_port()}"
    await env.apply(
        env.settings_manifest(ssoUsersActiveByDefault=False, sidecar={"url": closed_url})
    )
    body = await wait_settings(env, status="False", reason="SidecarUnavailable")
    unavailable = conditions_of(body)
    assert set(unavailable) == {"Ready", "Reconciling"}
    assert unavailable["Reconciling"]["status"] == "True"
    assert body["metadata"]["generation"] == 3
    assert_generation_observed(body)

    await env.apply(env.settings_manifest(ssoUsersActiveByDefault=False))
    body = await wait_settings(env, timeout=20.0)
    assert set(conditions_of(body)) == {"Ready"}
    assert_generation_observed(body)


# --- restarts -----------------------------------------------------------------------------------


async def test_restart_writes_nothing(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.start_operator()
    await env.ready_settings(useSSO=True)
    await env.ready_client("acme", domains=["acme.com"])
    await env.ready_client("fallback")
    # Let the first operator finish: both clients counted and routed.
    await wait_published(env, "SSOOnly")

    async def both_routed() -> bool:
        data = await configmap_data(env)
        routes = json.loads(data["sso-routes.json"])
        return routes["allowAll"] is not None and routes["domains"]["acme.com"]["active"]

    await wait_for(both_routed, description="both clients routed")
    for operator in env.operators:
        await operator.stop()

    objects = [
        (SETTINGS, "experio"),
        ("ssoclient", "acme"),
        ("ssoclient", "fallback"),
        ("configmap", CONFIGMAP),
        ("secret", API_KEY_SECRET),
    ]
    before = {}
    for kind, name in objects:
        body = await env.get(kind, name)
        assert body is not None
        before[(kind, name)] = body["metadata"]["resourceVersion"]
    events_before = {name: await event_reasons(env, name) for name in ("experio", "acme")}

    # With a 5 s drift interval the restarted operator reads every sidecar client within 5 s.
    # A second Ping and a second read of each client mean the first passes over all objects
    # are complete, status writes included.
    await restart_operator(env, "--drift-interval-seconds=5")
    await wait_commands(env, "Ping", 2)
    await wait_commands(env, "FetchOidcClient", 4)

    for (kind, name), resource_version in before.items():
        body = await env.get(kind, name)
        assert body is not None
        assert body["metadata"]["resourceVersion"] == resource_version, f"{kind}/{name} changed"
    for command in WRITE_COMMANDS:
        assert sum(env.emulator.counters.get(command, {}).values()) == 0, command
    assert env.emulator.initial_setup_calls == 0
    for name, reasons in events_before.items():
        assert await event_reasons(env, name) == reasons


async def test_configmap_restored_after_change(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.start_operator("--drift-interval-seconds=5")
    await env.ready_settings(useSSO=True, allowHybridLogin=True)
    rendered = await configmap_data(env)

    # An edit by hand is put back.
    await env.kubectl(
        "patch", "configmap", CONFIGMAP, "--type=merge", "-p", '{"data":{"USE_PROPELAUTH":"False"}}'
    )

    async def restored() -> bool:
        body = await env.get("configmap", CONFIGMAP)
        return body is not None and body.get("data") == rendered

    await wait_for(restored, description="the edited ConfigMap to be rendered again")

    # A key added by hand is removed.
    await env.kubectl(
        "patch", "configmap", CONFIGMAP, "--type=merge", "-p", '{"data":{"EXTRA_KEY":"x"}}'
    )
    await wait_for(restored, description="the added key to be removed")

    # A deleted ConfigMap is created again.
    await env.delete("configmap", CONFIGMAP)
    await wait_for(restored, description="the deleted ConfigMap to be rendered again")
