"""The client against the running PropelAuth emulator over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from experio_sso.sidecar import (
    ClientIdAlreadyTakenError,
    CommandNotAllowedError,
    CreateOidcClientRequest,
    CustomerIdAlreadyTakenError,
    FetchedMicrosoftEntraIdpInfo,
    FetchedOktaIdpInfo,
    GenericIdpInfo,
    InitialSetupAlreadyDoneError,
    InvalidFieldsError,
    MicrosoftEntraIdpInfoPatch,
    OidcClientNotFoundError,
    OktaIdpInfo,
    PatchOidcClientRequest,
    SetupSecretRejectedError,
    SidecarClient,
    SidecarClients,
    SidecarClientSettings,
    SidecarTimeoutError,
    SidecarUnavailableError,
    UnauthorizedError,
    UnexpectedResponseError,
)
from propelauth_emulator import EmulatorServer

from .helpers import CLIENT_SECRET_VALUE, entra_create_request

REDIRECT_URL = "https://experio.example.com/api/auth/sso/callback"


@pytest.fixture
async def client(emulator: EmulatorServer) -> AsyncIterator[SidecarClient]:
    clients = SidecarClients()
    try:
        yield clients.get(emulator.url)
    finally:
        await clients.aclose()


@pytest.fixture
def key(emulator_key: str) -> SecretStr:
    return SecretStr(emulator_key)


async def test_ping_returns_timestamp(client: SidecarClient, key: SecretStr) -> None:
    timestamp = await client.ping(key)

    # The emulator returns seconds since the epoch.
    assert abs(timestamp - time.time()) < 60


async def test_oidc_client_lifecycle(
    client: SidecarClient, key: SecretStr, emulator: EmulatorServer
) -> None:
    customer_id = "acme-com-1a2b3c4d"

    client_id = await client.create_oidc_client(key, entra_create_request(customer_id))
    fetched = await client.fetch_oidc_client(key, customer_id)

    assert client_id
    assert emulator.secret_matches(customer_id, CLIENT_SECRET_VALUE)
    assert fetched.customer_id == customer_id
    assert fetched.display_name == "Acme"
    assert fetched.redirect_url == REDIRECT_URL
    assert fetched.email_domain_allowlist == ["acme.com"]
    assert fetched.idp_info_from_customer == FetchedMicrosoftEntraIdpInfo(
        client_id="entra-app-id", uses_pkce=False, tenant_id="tenant-1"
    )

    patch = PatchOidcClientRequest(
        idp_info_from_customer=MicrosoftEntraIdpInfoPatch(
            client_secret=SecretStr("rotated-client-secret-0042"), uses_pkce=True
        ),
        display_name="Acme Inc.",
        email_domain_allowlist=["acme.com", "acme.org"],
    )
    patched_client_id = await client.patch_oidc_client(key, customer_id, patch)
    patched = await client.fetch_oidc_client(key, customer_id)

    assert patched_client_id == client_id
    assert emulator.secret_matches(customer_id, "rotated-client-secret-0042")
    assert not emulator.secret_matches(customer_id, CLIENT_SECRET_VALUE)
    assert patched.display_name == "Acme Inc."
    assert patched.email_domain_allowlist == ["acme.com", "acme.org"]
    assert patched.idp_info_from_customer.uses_pkce is True
    assert patched.idp_info_from_customer.tenant_id == "tenant-1"  # type: ignore[union-attr]

    await client.delete_oidc_client(key, customer_id)

    with pytest.raises(OidcClientNotFoundError):
        await client.fetch_oidc_client(key, customer_id)
    with pytest.raises(OidcClientNotFoundError) as caught:
        await client.delete_oidc_client(key, customer_id)
    assert caught.value.customer_id == customer_id


async def test_okta_and_generic_round_trip(client: SidecarClient, key: SecretStr) -> None:
    okta = CreateOidcClientRequest(
        idp_info_from_customer=OktaIdpInfo(
            client_id="okta-client",
            client_secret=SecretStr("okta-secret-value-1234"),
            sso_domain="acme.okta.com",
            uses_pkce=True,
        ),
        customer_id="okta-customer",
        redirect_url=REDIRECT_URL,
    )
    generic = CreateOidcClientRequest(
        idp_info_from_customer=GenericIdpInfo(
            client_id="generic-client",
            client_secret=SecretStr("generic-secret-value-1234"),
            auth_url="https://idp.example.com/authorize",
            token_url="https://idp.example.com/token",
            userinfo_url="https://idp.example.com/userinfo",
        ),
        customer_id="generic-customer",
        redirect_url=REDIRECT_URL,
        additional_scopes=["groups"],
    )

    await client.create_oidc_client(key, okta)
    await client.create_oidc_client(key, generic)
    fetched_okta = await client.fetch_oidc_client(key, "okta-customer")
    fetched_generic = await client.fetch_oidc_client(key, "generic-customer")

    assert fetched_okta.idp_info_from_customer == FetchedOktaIdpInfo(
        client_id="okta-client", uses_pkce=True, sso_domain="acme.okta.com"
    )
    assert fetched_generic.idp_info_from_customer.idp_type == "Generic"
    assert fetched_generic.additional_scopes == ["groups"]
    assert fetched_generic.email_domain_allowlist == []


async def test_second_create_reports_customer_id_taken(
    client: SidecarClient, key: SecretStr
) -> None:
    await client.create_oidc_client(key, entra_create_request("acme-com-1a2b3c4d"))

    with pytest.raises(CustomerIdAlreadyTakenError) as caught:
        await client.create_oidc_client(key, entra_create_request("acme-com-1a2b3c4d"))

    assert caught.value.customer_id == "acme-com-1a2b3c4d"
    assert caught.value.retryable is False


async def test_reused_idp_client_id_is_taken(client: SidecarClient, key: SecretStr) -> None:
    await client.create_oidc_client(key, entra_create_request("first-customer"))

    with pytest.raises(ClientIdAlreadyTakenError):
        await client.create_oidc_client(key, entra_create_request("second-customer"))


async def test_invalid_fields_are_listed(client: SidecarClient, key: SecretStr) -> None:
    request = entra_create_request().model_copy(update={"redirect_url": "not a url"})

    with pytest.raises(InvalidFieldsError) as caught:
        await client.create_oidc_client(key, request)

    fields = [item.field for item in caught.value.fields]
    assert "redirectUrl" in fields
    assert all(item.code and item.message for item in caught.value.fields)
    assert "redirectUrl" in str(caught.value)


@pytest.mark.parametrize(
    ("presented_key", "error_type"),
    [
        pytest.param("emu_ik_not-a-stored-key-000000", "IntegrationKeyNotFound", id="unknown key"),
        pytest.param("wrong-prefix-key-0000000000", "InvalidPrefix", id="wrong prefix"),
    ],
)
async def test_rejected_key_is_unauthorized(
    client: SidecarClient, presented_key: str, error_type: str
) -> None:
    with pytest.raises(UnauthorizedError) as caught:
        await client.ping(SecretStr(presented_key))

    assert caught.value.error_type == error_type
    assert caught.value.retryable is False


async def test_revoked_key_is_unauthorized(
    client: SidecarClient, key: SecretStr, emulator: EmulatorServer
) -> None:
    await client.ping(key)
    await emulator.revoke_key(key.get_secret_value())

    with pytest.raises(UnauthorizedError) as caught:
        await client.ping(key)

    assert caught.value.error_type == "IntegrationKeyNotFound"


async def test_key_changes_between_calls(client: SidecarClient, emulator: EmulatorServer) -> None:
    first = SecretStr(await emulator.mint_key())
    second = SecretStr(await emulator.mint_key())

    await client.ping(first)
    await emulator.revoke_key(first.get_secret_value())
    await client.ping(second)


async def test_missing_permission_names_command(
    client: SidecarClient, emulator: EmulatorServer
) -> None:
    ping_only = SecretStr(await emulator.mint_key(commands=["Ping"]))
    await client.ping(ping_only)

    with pytest.raises(CommandNotAllowedError) as caught:
        await client.create_oidc_client(ping_only, entra_create_request())

    assert caught.value.denied_command == "CreateOidcClient"
    assert caught.value.retryable is False


async def test_initial_setup_once(
    client: SidecarClient, emulator: EmulatorServer, emulator_setup_secret: str
) -> None:
    with pytest.raises(SetupSecretRejectedError):
        await client.initial_setup(SecretStr("wrong-setup-secret-0000"))

    minted = await client.initial_setup(SecretStr(emulator_setup_secret))
    await client.ping(minted)

    with pytest.raises(InitialSetupAlreadyDoneError):
        await client.initial_setup(SecretStr(emulator_setup_secret))
    assert emulator.initial_setup_done


# Faults injected by the emulator.


async def test_outage_is_retryable(
    client: SidecarClient, key: SecretStr, emulator: EmulatorServer
) -> None:
    emulator.set_faults(outage=True)

    with pytest.raises(UnexpectedResponseError) as caught:
        await client.ping(key)

    assert caught.value.status_code == 503
    assert caught.value.retryable is True


async def test_injected_error_is_unexpected(
    client: SidecarClient, key: SecretStr, emulator: EmulatorServer
) -> None:
    emulator.set_faults(error_rate=1.0, error_status=500)

    with pytest.raises(UnexpectedResponseError) as caught:
        await client.ping(key)

    assert caught.value.error_type == "UnexpectedError"
    assert caught.value.retryable is True


async def test_dropped_connection_is_retryable(
    client: SidecarClient, key: SecretStr, emulator: EmulatorServer
) -> None:
    emulator.set_faults(drop_rate=1.0)

    with pytest.raises((SidecarUnavailableError, UnexpectedResponseError)) as caught:
        await client.ping(key)

    assert caught.value.retryable is True


async def test_drop_after_create_then_customer_id_taken(
    client: SidecarClient, key: SecretStr, emulator: EmulatorServer
) -> None:
    emulator.set_faults(drop_rate=1.0, drop_after_command=True, commands={"CreateOidcClient"})

    with pytest.raises((SidecarUnavailableError, UnexpectedResponseError)):
        await client.create_oidc_client(key, entra_create_request())
    emulator.clear_faults()

    with pytest.raises(CustomerIdAlreadyTakenError):
        await client.create_oidc_client(key, entra_create_request())


async def test_slow_sidecar_times_out(key: SecretStr, emulator: EmulatorServer) -> None:
    emulator.set_faults(latency_ms=1500)
    settings = SidecarClientSettings(read_timeout=0.2)

    async with SidecarClient(emulator.url, settings=settings) as slow_client:
        with pytest.raises(SidecarTimeoutError) as caught:
            await slow_client.ping(key)

    assert caught.value.retryable is True


async def test_concurrent_calls_share_pool(key: SecretStr, emulator: EmulatorServer) -> None:
    settings = SidecarClientSettings(max_concurrent_requests=4)
    async with SidecarClient(emulator.url, settings=settings) as pooled:
        results = await asyncio.gather(*(pooled.ping(key) for _ in range(40)))

    assert len(results) == 40
    assert sum(emulator.counters["Ping"].values()) == 40
