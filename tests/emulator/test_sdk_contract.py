"""The official ``propelauth-byo`` SDK drives the emulator over HTTP.

Every implemented command and every error type a command can return goes through the SDK's own
parser here. A response the SDK cannot parse makes it raise, which fails the test. The SDK is
asynchronous (aiohttp), so it runs on the test's event loop next to the emulator.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from propelauth_byo import PropelAuthClient, create_client, is_err, is_ok
from propelauth_byo.generated.create_oidc_client_error import (
    CreateOidcClientErrorClientIdAlreadyTaken,
    CreateOidcClientErrorCustomerIdAlreadyTakenForEoidcClient,
    CreateOidcClientErrorInvalidFields,
    CreateOidcClientErrorUnexpectedError,
)
from propelauth_byo.generated.delete_oidc_client_error import (
    DeleteOidcClientErrorOidcClientNotFound,
    DeleteOidcClientErrorUnexpectedError,
)
from propelauth_byo.generated.fetch_oidc_client_error import (
    FetchOidcClientErrorOidcClientNotFound,
    FetchOidcClientErrorUnexpectedError,
)
from propelauth_byo.generated.idp_info_from_customer import (
    IdpInfoFromCustomerGeneric,
    IdpInfoFromCustomerOkta,
)
from propelauth_byo.generated.idp_info_from_customer_response import (
    IdpInfoFromCustomerResponseGeneric,
    IdpInfoFromCustomerResponseMicrosoftEntra,
    IdpInfoFromCustomerResponseOkta,
)
from propelauth_byo.generated.initiate_oidc_login_error import (
    InitiateOidcLoginErrorClientNotFound,
    InitiateOidcLoginErrorOidcRedirectUrlNotRegistered,
    InitiateOidcLoginErrorRedirectUrlInvalid,
    InitiateOidcLoginErrorUnexpectedError,
)
from propelauth_byo.generated.optional_idp_info_from_customer import (
    OptionalIdpInfoFromCustomerGeneric,
    OptionalIdpInfoFromCustomerMicrosoftEntra,
    OptionalIdpInfoFromCustomerOkta,
)
from propelauth_byo.generated.patch_oidc_client_error import (
    PatchOidcClientErrorInvalidFields,
    PatchOidcClientErrorOidcClientNotFound,
    PatchOidcClientErrorUnexpectedError,
)
from propelauth_byo.generated.scim_matching_definition import ScimMatchingDefinition

from propelauth_emulator import EmulatorServer

from .helpers import (
    ENTRA_TENANT_ID,
    REDIRECT_URL,
    entra_idp,
    generic_idp,
    okta_idp,
    run_command,
)


@pytest.fixture
def sdk(emulator: EmulatorServer, emulator_key: str) -> PropelAuthClient:
    return create_client(emulator.url, emulator_key)


async def create_okta_client(sdk: PropelAuthClient, customer_id: str = "acme-com-1") -> str:
    result = await sdk.sso.management.create_oidc_client(
        idp_info_from_customer=okta_idp(),
        customer_id=customer_id,
        redirect_url=REDIRECT_URL,
    )
    assert is_ok(result), result
    return result.data.client_id


async def test_ping_returns_timestamp(sdk: PropelAuthClient) -> None:
    result = await sdk.ping()

    assert is_ok(result), result
    assert result.data.timestamp > 1_700_000_000


@pytest.mark.parametrize(
    ("idp_info", "response_type", "type_fields"),
    [
        pytest.param(
            entra_idp(),
            IdpInfoFromCustomerResponseMicrosoftEntra,
            {"tenant_id": ENTRA_TENANT_ID},
            id="MicrosoftEntra",
        ),
        pytest.param(
            okta_idp(), IdpInfoFromCustomerResponseOkta, {"sso_domain": "acme.okta.com"}, id="Okta"
        ),
        pytest.param(
            generic_idp(),
            IdpInfoFromCustomerResponseGeneric,
            {
                "auth_url": "https://idp.example.net/authorize?tenant=acme",
                "token_url": "https://idp.example.net/token",
                "userinfo_url": "https://idp.example.net/userinfo",
            },
            id="Generic",
        ),
    ],
)
async def test_create_then_fetch_each_idp_type(
    sdk: PropelAuthClient,
    emulator: EmulatorServer,
    idp_info: Any,
    response_type: type,
    type_fields: dict[str, str],
) -> None:
    created = await sdk.sso.management.create_oidc_client(
        idp_info_from_customer=idp_info,
        customer_id="acme-com-1a2b3c4d",
        redirect_url=REDIRECT_URL,
        display_name="Acme",
        additional_redirect_urls=["https://experio.example.com/other-callback"],
        additional_scopes=["groups"],
        scim_matching_definition=ScimMatchingDefinition(strategy="OidcEmailToScimUsername"),
        email_domain_allowlist=["acme.com", "acme.de"],
    )
    assert is_ok(created), created
    assert created.data.client_id == idp_info.client_id

    by_customer_id = await sdk.sso.management.fetch_oidc_client(customer_id="acme-com-1a2b3c4d")
    by_client_id = await sdk.sso.management.fetch_oidc_client(oidc_client_id=idp_info.client_id)

    assert is_ok(by_customer_id), by_customer_id
    assert is_ok(by_client_id), by_client_id
    assert by_customer_id.data == by_client_id.data
    fetched = by_customer_id.data
    assert fetched.customer_id == "acme-com-1a2b3c4d"
    assert fetched.display_name == "Acme"
    assert fetched.redirect_url == REDIRECT_URL
    assert fetched.additional_redirect_urls == ["https://experio.example.com/other-callback"]
    assert fetched.additional_scopes == ["groups"]
    assert fetched.email_domain_allowlist == ["acme.com", "acme.de"]
    assert fetched.scim_matching_definition == ScimMatchingDefinition(
        strategy="OidcEmailToScimUsername"
    )
    assert fetched.scim_connection is None
    idp = fetched.idp_info_from_customer
    assert isinstance(idp, response_type)
    assert idp.client_id == idp_info.client_id
    assert idp.uses_pkce == idp_info.uses_pkce
    for name, value in type_fields.items():
        assert getattr(idp, name) == value
    assert emulator.secret_matches("acme-com-1a2b3c4d", idp_info.client_secret)


async def test_fetch_never_returns_client_secret(
    sdk: PropelAuthClient, emulator: EmulatorServer, emulator_key: str
) -> None:
    await create_okta_client(sdk)

    status, body = await run_command(
        emulator.url, emulator_key, "FetchOidcClient", {"customerId": "acme-com-1"}
    )

    assert status == 200
    assert "clientSecret" not in body["idpInfoFromCustomer"]
    assert "okta-secret" not in str(body)
    assert "okta-secret" not in str(emulator.clients())


async def test_fetch_minimal_client_has_empty_lists(sdk: PropelAuthClient) -> None:
    await create_okta_client(sdk)

    result = await sdk.sso.management.fetch_oidc_client(customer_id="acme-com-1")

    assert is_ok(result), result
    assert result.data.display_name is None
    assert result.data.additional_redirect_urls == []
    assert result.data.email_domain_allowlist == []
    assert result.data.additional_scopes == []
    assert result.data.scim_matching_definition is None


async def test_patch_changes_given_fields_only(
    sdk: PropelAuthClient, emulator: EmulatorServer
) -> None:
    client_id = await create_okta_client(sdk)

    patched = await sdk.sso.management.patch_oidc_client(
        customer_id="acme-com-1",
        idp_info_from_customer=OptionalIdpInfoFromCustomerOkta(
            client_secret="rotated-secret", uses_pkce=False, sso_domain=None
        ),
        display_name="Acme Inc.",
        email_domain_allowlist=["acme.com"],
        additional_scopes=["groups", "offline_access"],
    )
    fetched = await sdk.sso.management.fetch_oidc_client(oidc_client_id=client_id)

    assert is_ok(patched), patched
    assert patched.data.client_id == client_id
    assert is_ok(fetched), fetched
    assert fetched.data.display_name == "Acme Inc."
    assert fetched.data.email_domain_allowlist == ["acme.com"]
    assert fetched.data.additional_scopes == ["groups", "offline_access"]
    assert fetched.data.redirect_url == REDIRECT_URL
    assert isinstance(fetched.data.idp_info_from_customer, IdpInfoFromCustomerResponseOkta)
    assert fetched.data.idp_info_from_customer.sso_domain == "acme.okta.com"
    assert fetched.data.idp_info_from_customer.uses_pkce is False
    assert emulator.secret_matches("acme-com-1", "rotated-secret")
    assert not emulator.secret_matches("acme-com-1", "okta-secret")


async def test_patch_without_secret_keeps_secret(
    sdk: PropelAuthClient, emulator: EmulatorServer
) -> None:
    await create_okta_client(sdk)

    result = await sdk.sso.management.patch_oidc_client(
        customer_id="acme-com-1", redirect_url="https://experio.example.com/new-callback"
    )

    assert is_ok(result), result
    assert emulator.secret_matches("acme-com-1", "okta-secret")
    assert emulator.clients()[0]["redirectUrl"] == "https://experio.example.com/new-callback"


async def test_patch_switches_idp_type_with_all_fields(sdk: PropelAuthClient) -> None:
    client_id = await create_okta_client(sdk)

    result = await sdk.sso.management.patch_oidc_client(
        customer_id="acme-com-1",
        idp_info_from_customer=OptionalIdpInfoFromCustomerMicrosoftEntra(
            client_secret=None, uses_pkce=None, tenant_id=ENTRA_TENANT_ID
        ),
    )
    fetched = await sdk.sso.management.fetch_oidc_client(customer_id="acme-com-1")

    assert is_ok(result), result
    assert is_ok(fetched), fetched
    idp = fetched.data.idp_info_from_customer
    assert isinstance(idp, IdpInfoFromCustomerResponseMicrosoftEntra)
    assert idp.tenant_id == ENTRA_TENANT_ID
    assert idp.client_id == client_id
    assert idp.uses_pkce is True


async def test_patch_switching_idp_type_needs_type_fields(sdk: PropelAuthClient) -> None:
    await create_okta_client(sdk)

    result = await sdk.sso.management.patch_oidc_client(
        customer_id="acme-com-1",
        idp_info_from_customer=OptionalIdpInfoFromCustomerGeneric(
            client_secret=None,
            uses_pkce=None,
            auth_url="https://idp.example.net/authorize",
            token_url=None,
            userinfo_url=None,
        ),
    )
    fetched = await sdk.sso.management.fetch_oidc_client(customer_id="acme-com-1")

    assert is_err(result)
    assert isinstance(result.error, PatchOidcClientErrorInvalidFields)
    fields = {field["field"]: field["code"] for field in result.error.details.fields}
    assert fields == {
        "idpInfoFromCustomer.tokenUrl": "required",
        "idpInfoFromCustomer.userinfoUrl": "required",
    }
    assert is_ok(fetched), fetched
    assert isinstance(fetched.data.idp_info_from_customer, IdpInfoFromCustomerResponseOkta)


async def test_patch_invalid_fields_are_listed(sdk: PropelAuthClient) -> None:
    await create_okta_client(sdk)

    result = await sdk.sso.management.patch_oidc_client(
        customer_id="acme-com-1",
        redirect_url="not a url",
        email_domain_allowlist=["acme.com", "https://acme.de"],
    )

    assert is_err(result)
    assert isinstance(result.error, PatchOidcClientErrorInvalidFields)
    fields = {field["field"]: field["code"] for field in result.error.details.fields}
    assert fields == {"redirectUrl": "invalid_url", "emailDomainAllowlist[1]": "invalid_domain"}
    for field in result.error.details.fields:
        assert field["message"]


async def test_create_invalid_fields_are_listed(sdk: PropelAuthClient) -> None:
    result = await sdk.sso.management.create_oidc_client(
        idp_info_from_customer=IdpInfoFromCustomerOkta(
            client_id="0oa-okta-client",
            client_secret="okta-secret",
            uses_pkce=False,
            sso_domain="https://acme.okta.com/",
        ),
        customer_id="acme-com-1",
        redirect_url="ftp://experio.example.com/callback",
    )

    assert is_err(result)
    assert isinstance(result.error, CreateOidcClientErrorInvalidFields)
    fields = {field["field"]: field["code"] for field in result.error.details.fields}
    assert fields == {
        "idpInfoFromCustomer.ssoDomain": "invalid_domain",
        "redirectUrl": "invalid_url",
    }


async def test_create_duplicate_customer_id(sdk: PropelAuthClient) -> None:
    await create_okta_client(sdk, "acme-com-1")

    result = await sdk.sso.management.create_oidc_client(
        idp_info_from_customer=entra_idp(), customer_id="acme-com-1", redirect_url=REDIRECT_URL
    )

    assert is_err(result)
    assert isinstance(result.error, CreateOidcClientErrorCustomerIdAlreadyTakenForEoidcClient)


async def test_create_duplicate_client_id(sdk: PropelAuthClient) -> None:
    await create_okta_client(sdk, "acme-com-1")

    result = await sdk.sso.management.create_oidc_client(
        idp_info_from_customer=okta_idp(), customer_id="other-com-2", redirect_url=REDIRECT_URL
    )

    assert is_err(result)
    assert isinstance(result.error, CreateOidcClientErrorClientIdAlreadyTaken)


async def test_repeated_create_reports_customer_id(sdk: PropelAuthClient) -> None:
    await create_okta_client(sdk, "acme-com-1")

    result = await sdk.sso.management.create_oidc_client(
        idp_info_from_customer=okta_idp(), customer_id="acme-com-1", redirect_url=REDIRECT_URL
    )

    assert is_err(result)
    assert isinstance(result.error, CreateOidcClientErrorCustomerIdAlreadyTakenForEoidcClient)


async def test_delete_then_client_not_found(
    sdk: PropelAuthClient, emulator: EmulatorServer
) -> None:
    client_id = await create_okta_client(sdk)

    deleted = await sdk.sso.management.delete_oidc_client(customer_id="acme-com-1")
    fetched = await sdk.sso.management.fetch_oidc_client(oidc_client_id=client_id)
    patched = await sdk.sso.management.patch_oidc_client(
        customer_id="acme-com-1", display_name="Gone"
    )
    deleted_again = await sdk.sso.management.delete_oidc_client(oidc_client_id=client_id)
    login = await sdk.sso.initiate_oidc_login(customer_id="acme-com-1")

    assert is_ok(deleted), deleted
    assert is_err(fetched)
    assert isinstance(fetched.error, FetchOidcClientErrorOidcClientNotFound)
    assert is_err(patched)
    assert isinstance(patched.error, PatchOidcClientErrorOidcClientNotFound)
    assert is_err(deleted_again)
    assert isinstance(deleted_again.error, DeleteOidcClientErrorOidcClientNotFound)
    assert is_err(login)
    assert isinstance(login.error, InitiateOidcLoginErrorClientNotFound)
    assert emulator.clients() == []


async def test_client_id_reusable_after_delete(sdk: PropelAuthClient) -> None:
    await create_okta_client(sdk, "acme-com-1")
    await sdk.sso.management.delete_oidc_client(customer_id="acme-com-1")

    result = await sdk.sso.management.create_oidc_client(
        idp_info_from_customer=okta_idp(), customer_id="acme-com-2", redirect_url=REDIRECT_URL
    )

    assert is_ok(result), result


@pytest.mark.parametrize(
    ("idp_info", "endpoint"),
    [
        pytest.param(
            entra_idp(),
            f"https://login.microsoftonline.com/{ENTRA_TENANT_ID}/oauth2/v2.0/authorize",
            id="MicrosoftEntra",
        ),
        pytest.param(okta_idp(), "https://acme.okta.com/oauth2/v1/authorize", id="Okta"),
        pytest.param(generic_idp(), "https://idp.example.net/authorize", id="Generic"),
    ],
)
async def test_initiate_login_url_per_idp_type(
    sdk: PropelAuthClient, idp_info: Any, endpoint: str
) -> None:
    await sdk.sso.management.create_oidc_client(
        idp_info_from_customer=idp_info,
        customer_id="acme-com-1",
        redirect_url=REDIRECT_URL,
        additional_scopes=["groups"],
    )

    result = await sdk.sso.initiate_oidc_login(customer_id="acme-com-1")

    assert is_ok(result), result
    url = urlsplit(result.data.send_user_to_idp_url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == endpoint
    query = parse_qs(url.query)
    assert query["response_type"] == ["code"]
    assert query["client_id"] == [idp_info.client_id]
    assert query["redirect_uri"] == [REDIRECT_URL]
    assert query["scope"] == ["openid email profile groups"]
    assert len(query["state"][0]) >= 32
    assert len(query["nonce"][0]) >= 32
    if idp_info.uses_pkce:
        assert query["code_challenge_method"] == ["S256"]
        assert len(query["code_challenge"][0]) == 43
    else:
        assert "code_challenge" not in query
    if isinstance(idp_info, IdpInfoFromCustomerGeneric):
        assert query["tenant"] == ["acme"]
    assert result.data.state_for_cookie
    assert result.data.state_for_cookie != query["state"][0]


async def test_initiate_login_picks_registered_redirect_url(sdk: PropelAuthClient) -> None:
    client_id = await create_okta_client(sdk)
    await sdk.sso.management.patch_oidc_client(
        customer_id="acme-com-1",
        additional_redirect_urls=["https://experio.example.com/second-callback"],
    )

    result = await sdk.sso.initiate_oidc_login(
        oidc_client_id=client_id,
        redirect_url="https://experio.example.com/second-callback",
        post_login_redirect_url="https://experio.example.com/dashboard",
    )

    assert is_ok(result), result
    query = parse_qs(urlsplit(result.data.send_user_to_idp_url).query)
    assert query["redirect_uri"] == ["https://experio.example.com/second-callback"]


async def test_initiate_login_unregistered_redirect_url(sdk: PropelAuthClient) -> None:
    await create_okta_client(sdk)

    result = await sdk.sso.initiate_oidc_login(
        customer_id="acme-com-1", redirect_url="https://evil.example.org/callback"
    )

    assert is_err(result)
    assert isinstance(result.error, InitiateOidcLoginErrorOidcRedirectUrlNotRegistered)
    assert result.error.details.message


async def test_initiate_login_invalid_post_login_url(sdk: PropelAuthClient) -> None:
    await create_okta_client(sdk)

    result = await sdk.sso.initiate_oidc_login(
        customer_id="acme-com-1", post_login_redirect_url="javascript:alert(1)"
    )

    assert is_err(result)
    assert isinstance(result.error, InitiateOidcLoginErrorRedirectUrlInvalid)
    assert result.error.details.message


async def test_initiate_login_post_login_origin_allowlist(tmp_path: Any) -> None:
    server = EmulatorServer(
        tmp_path / "state.sqlite3", post_login_redirect_origins=["https://experio.example.com"]
    )
    await server.start()
    try:
        sdk = create_client(server.url, await server.mint_key())
        await create_okta_client(sdk)

        allowed = await sdk.sso.initiate_oidc_login(
            customer_id="acme-com-1", post_login_redirect_url="https://experio.example.com/home"
        )
        rejected = await sdk.sso.initiate_oidc_login(
            customer_id="acme-com-1", post_login_redirect_url="https://other.example.com/home"
        )
    finally:
        await server.stop()

    assert is_ok(allowed), allowed
    assert is_err(rejected)
    assert isinstance(rejected.error, InitiateOidcLoginErrorRedirectUrlInvalid)


async def test_unexpected_error_parsed_by_every_command(
    sdk: PropelAuthClient, emulator: EmulatorServer
) -> None:
    client_id = await create_okta_client(sdk)
    emulator.set_faults(error_rate=1.0, error_status=500)

    ping = await sdk.ping()
    created = await sdk.sso.management.create_oidc_client(
        idp_info_from_customer=entra_idp(), customer_id="other", redirect_url=REDIRECT_URL
    )
    fetched = await sdk.sso.management.fetch_oidc_client(oidc_client_id=client_id)
    patched = await sdk.sso.management.patch_oidc_client(customer_id="acme-com-1")
    deleted = await sdk.sso.management.delete_oidc_client(customer_id="acme-com-1")
    login = await sdk.sso.initiate_oidc_login(customer_id="acme-com-1")

    assert is_err(ping)
    assert ping.error.type == "UnexpectedError"
    assert is_err(created)
    assert isinstance(created.error, CreateOidcClientErrorUnexpectedError)
    assert is_err(fetched)
    assert isinstance(fetched.error, FetchOidcClientErrorUnexpectedError)
    assert is_err(patched)
    assert isinstance(patched.error, PatchOidcClientErrorUnexpectedError)
    assert is_err(deleted)
    assert isinstance(deleted.error, DeleteOidcClientErrorUnexpectedError)
    assert is_err(login)
    assert isinstance(login.error, InitiateOidcLoginErrorUnexpectedError)
    assert len(emulator.clients()) == 1


@pytest.mark.parametrize(
    ("key_suffix", "expected_type"),
    [
        pytest.param("unknown", "IntegrationKeyNotFound", id="unknown key"),
        pytest.param(None, "InvalidPrefix", id="wrong prefix"),
    ],
)
async def test_ping_reports_key_errors(
    emulator: EmulatorServer, key_suffix: str | None, expected_type: str
) -> None:
    key = "emu_ik_" + key_suffix if key_suffix else "sk_live_not_an_emulator_key"

    result = await create_client(emulator.url, key).ping()

    assert is_err(result)
    assert result.error.type == expected_type


async def test_ping_reports_command_not_allowed(emulator: EmulatorServer) -> None:
    key = await emulator.mint_key(["FetchOidcClient"])

    result = await create_client(emulator.url, key).ping()

    assert is_err(result)
    assert result.error.type == "CommandNotAllowed"
    assert result.error.details == {"command_name": "Ping"}
