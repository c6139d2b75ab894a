"""Wire shapes of the request and response models, checked against the official SDK's types."""

from __future__ import annotations

import pydantic
import pytest
from propelauth_byo.generated import idp_info_from_customer as sdk_idp
from propelauth_byo.generated import optional_idp_info_from_customer as sdk_patch_idp
from propelauth_byo.generated.create_oidc_client_command import CreateOidcClientCommand
from propelauth_byo.generated.patch_oidc_client_command import PatchOidcClientCommandCustomerId
from pydantic import SecretStr

from experio_sso.sidecar import (
    CreateOidcClientRequest,
    FetchedGenericIdpInfo,
    FetchedMicrosoftEntraIdpInfo,
    FetchedOktaIdpInfo,
    GenericIdpInfo,
    GenericIdpInfoPatch,
    MicrosoftEntraIdpInfo,
    MicrosoftEntraIdpInfoPatch,
    OidcClient,
    OktaIdpInfo,
    OktaIdpInfoPatch,
    PatchOidcClientRequest,
    ScimMatchingDefinition,
)

from .helpers import CLIENT_SECRET_VALUE

SECRET = SecretStr(CLIENT_SECRET_VALUE)

IDP_PAIRS = [
    pytest.param(
        MicrosoftEntraIdpInfo(client_id="c", client_secret=SECRET, tenant_id="t", uses_pkce=True),
        sdk_idp.IdpInfoFromCustomerMicrosoftEntra(
            client_id="c", client_secret=CLIENT_SECRET_VALUE, uses_pkce=True, tenant_id="t"
        ),
        id="entra",
    ),
    pytest.param(
        OktaIdpInfo(client_id="c", client_secret=SECRET, sso_domain="acme.okta.com"),
        sdk_idp.IdpInfoFromCustomerOkta(
            client_id="c",
            client_secret=CLIENT_SECRET_VALUE,
            uses_pkce=False,
            sso_domain="acme.okta.com",
        ),
        id="okta",
    ),
    pytest.param(
        GenericIdpInfo(
            client_id="c",
            client_secret=SECRET,
            auth_url="https://idp/auth",
            token_url="https://idp/token",
            userinfo_url="https://idp/userinfo",
        ),
        sdk_idp.IdpInfoFromCustomerGeneric(
            client_id="c",
            client_secret=CLIENT_SECRET_VALUE,
            uses_pkce=False,
            auth_url="https://idp/auth",
            token_url="https://idp/token",
            userinfo_url="https://idp/userinfo",
        ),
        id="generic",
    ),
]


@pytest.mark.parametrize(("ours", "sdk"), IDP_PAIRS)
def test_create_request_matches_sdk(ours: object, sdk: object) -> None:
    request = CreateOidcClientRequest.model_validate(
        {
            "idp_info_from_customer": ours,
            "customer_id": "acme-com-1a2b3c4d",
            "redirect_url": "https://experio.example.com/api/auth/sso/callback",
            "display_name": "Acme",
            "additional_scopes": ["groups"],
            "email_domain_allowlist": ["acme.com"],
            "scim_matching_definition": ScimMatchingDefinition(strategy="OidcSubToScimUsername"),
        }
    )
    expected = CreateOidcClientCommand(
        idp_info_from_customer=sdk,
        customer_id="acme-com-1a2b3c4d",
        redirect_url="https://experio.example.com/api/auth/sso/callback",
        display_name="Acme",
        additional_scopes=["groups"],
        email_domain_allowlist=["acme.com"],
        scim_matching_definition=None,
    )._to_request()
    expected["scimMatchingDefinition"] = {"strategy": "OidcSubToScimUsername"}

    assert request.to_wire() == expected


PATCH_PAIRS = [
    pytest.param(
        MicrosoftEntraIdpInfoPatch(client_secret=SECRET),
        sdk_patch_idp.OptionalIdpInfoFromCustomerMicrosoftEntra(
            client_secret=CLIENT_SECRET_VALUE, uses_pkce=None, tenant_id=None
        ),
        id="entra-secret-only",
    ),
    pytest.param(
        OktaIdpInfoPatch(uses_pkce=True, sso_domain="acme.okta.com"),
        sdk_patch_idp.OptionalIdpInfoFromCustomerOkta(
            client_secret=None, uses_pkce=True, sso_domain="acme.okta.com"
        ),
        id="okta-without-secret",
    ),
    pytest.param(
        GenericIdpInfoPatch(token_url="https://idp/token2"),
        sdk_patch_idp.OptionalIdpInfoFromCustomerGeneric(
            client_secret=None,
            uses_pkce=None,
            auth_url=None,
            token_url="https://idp/token2",
            userinfo_url=None,
        ),
        id="generic-one-url",
    ),
]


@pytest.mark.parametrize(("ours", "sdk"), PATCH_PAIRS)
def test_patch_request_matches_sdk(ours: object, sdk: object) -> None:
    request = PatchOidcClientRequest.model_validate(
        {"idp_info_from_customer": ours, "email_domain_allowlist": []}
    )
    expected = PatchOidcClientCommandCustomerId(
        customer_id="acme-com-1a2b3c4d",
        idp_info_from_customer=sdk,
        display_name=None,
        email_domain_allowlist=[],
        redirect_url=None,
        additional_redirect_urls=None,
        additional_scopes=None,
        scim_matching_definition=None,
    )._to_request()
    del expected["customerId"]

    assert request.to_wire() == expected


def test_patch_idp_rejects_client_id() -> None:
    with pytest.raises(pydantic.ValidationError):
        MicrosoftEntraIdpInfoPatch.model_validate({"idpType": "MicrosoftEntra", "clientId": "new"})


def test_idp_union_dispatches_on_idp_type() -> None:
    request = CreateOidcClientRequest.model_validate(
        {
            "idpInfoFromCustomer": {
                "idpType": "Okta",
                "clientId": "c",
                "clientSecret": CLIENT_SECRET_VALUE,
                "usesPkce": False,
                "ssoDomain": "acme.okta.com",
            },
            "customerId": "x",
            "redirectUrl": "https://e/cb",
        }
    )

    assert isinstance(request.idp_info_from_customer, OktaIdpInfo)


def test_idp_union_rejects_unknown_type() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        CreateOidcClientRequest.model_validate(
            {
                "idpInfoFromCustomer": {
                    "idpType": "Auth0",
                    "clientId": "c",
                    "clientSecret": CLIENT_SECRET_VALUE,
                },
                "customerId": "x",
                "redirectUrl": "https://e/cb",
            }
        )

    assert CLIENT_SECRET_VALUE not in str(caught.value)


def test_client_secret_masked_outside_to_wire() -> None:
    idp = MicrosoftEntraIdpInfo(client_id="c", client_secret=SECRET, tenant_id="t")
    request = CreateOidcClientRequest(
        idp_info_from_customer=idp, customer_id="x", redirect_url="https://e/cb"
    )

    assert CLIENT_SECRET_VALUE not in repr(request)
    assert CLIENT_SECRET_VALUE not in str(request)
    assert CLIENT_SECRET_VALUE not in request.model_dump_json()
    assert CLIENT_SECRET_VALUE not in str(request.model_dump())
    assert CLIENT_SECRET_VALUE not in str(request.model_dump(mode="json", by_alias=True))
    assert request.to_wire()["idpInfoFromCustomer"]["clientSecret"] == CLIENT_SECRET_VALUE


FETCHED_IDPS = [
    pytest.param(
        {"idpType": "MicrosoftEntra", "clientId": "c", "usesPkce": True, "tenantId": "t"},
        FetchedMicrosoftEntraIdpInfo(client_id="c", uses_pkce=True, tenant_id="t"),
        id="entra",
    ),
    pytest.param(
        {"idpType": "Okta", "clientId": "c", "usesPkce": False, "ssoDomain": "a.okta.com"},
        FetchedOktaIdpInfo(client_id="c", uses_pkce=False, sso_domain="a.okta.com"),
        id="okta",
    ),
    pytest.param(
        {
            "idpType": "Generic",
            "clientId": "c",
            "usesPkce": False,
            "authUrl": "https://i/a",
            "tokenUrl": "https://i/t",
            "userinfoUrl": "https://i/u",
        },
        FetchedGenericIdpInfo(
            client_id="c",
            uses_pkce=False,
            auth_url="https://i/a",
            token_url="https://i/t",
            userinfo_url="https://i/u",
        ),
        id="generic",
    ),
]


@pytest.mark.parametrize(("wire_idp", "expected_idp"), FETCHED_IDPS)
def test_fetched_client_parses_every_idp(wire_idp: dict[str, object], expected_idp: object) -> None:
    body = {
        "customerId": "acme-com-1a2b3c4d",
        "displayName": "Acme",
        "redirectUrl": "https://e/cb",
        "additionalRedirectUrls": [],
        "emailDomainAllowlist": ["acme.com"],
        "additionalScopes": ["groups"],
        "idpInfoFromCustomer": wire_idp,
        "scimConnection": None,
        "someFieldOfANewerSidecar": 1,
    }

    client = OidcClient.model_validate(body)

    assert client.idp_info_from_customer == expected_idp
    assert client.customer_id == "acme-com-1a2b3c4d"
    assert client.email_domain_allowlist == ["acme.com"]
    assert client.additional_scopes == ["groups"]
    assert client.scim_connection is None


def test_fetched_idp_has_no_client_secret() -> None:
    for model in (FetchedMicrosoftEntraIdpInfo, FetchedOktaIdpInfo, FetchedGenericIdpInfo):
        assert "client_secret" not in model.model_fields
