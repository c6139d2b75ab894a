"""Request validation over raw HTTP: field errors, identifiers and malformed bodies."""

from __future__ import annotations

from typing import Any

import pytest

from propelauth_emulator import EmulatorServer

from .helpers import create_data, post_json, run_command


def okta_info(**changes: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "idpType": "Okta",
        "clientId": "0oa-okta-client",
        "clientSecret": "okta-secret",
        "usesPkce": False,
        "ssoDomain": "acme.okta.com",
    }
    info.update(changes)
    return {key: value for key, value in info.items() if value is not None}


CREATE_CASES = [
    pytest.param(
        {"customerId": None},
        {"customerId": "required"},
        id="missing customer ID",
    ),
    pytest.param({"customerId": "  "}, {"customerId": "empty"}, id="blank customer ID"),
    pytest.param({"redirectUrl": None}, {"redirectUrl": "required"}, id="missing redirect URL"),
    pytest.param(
        {"redirectUrl": "/relative/callback"}, {"redirectUrl": "invalid_url"}, id="relative URL"
    ),
    pytest.param(
        {"redirectUrl": "https://host:99999/x"}, {"redirectUrl": "invalid_url"}, id="bad port"
    ),
    pytest.param(
        {"idpInfoFromCustomer": None},
        {"idpInfoFromCustomer": "required"},
        id="missing IdP info",
    ),
    pytest.param(
        {"idpInfoFromCustomer": okta_info(idpType="Auth0")},
        {"idpInfoFromCustomer.idpType": "invalid_value"},
        id="unknown IdP type",
    ),
    pytest.param(
        {"idpInfoFromCustomer": okta_info(clientSecret=None)},
        {"idpInfoFromCustomer.clientSecret": "required"},
        id="missing client secret",
    ),
    pytest.param(
        {"idpInfoFromCustomer": okta_info(usesPkce="yes")},
        {"idpInfoFromCustomer.usesPkce": "invalid_type"},
        id="PKCE flag not boolean",
    ),
    pytest.param(
        {"idpInfoFromCustomer": okta_info(ssoDomain=None)},
        {"idpInfoFromCustomer.ssoDomain": "required"},
        id="Okta without domain",
    ),
    pytest.param(
        {"idpInfoFromCustomer": okta_info(ssoDomain="acme.okta.com/")},
        {"idpInfoFromCustomer.ssoDomain": "invalid_domain"},
        id="Okta domain with slash",
    ),
    pytest.param(
        {
            "idpInfoFromCustomer": {
                "idpType": "MicrosoftEntra",
                "clientId": "c",
                "clientSecret": "s",
                "usesPkce": False,
            }
        },
        {"idpInfoFromCustomer.tenantId": "required"},
        id="Entra without tenant",
    ),
    pytest.param(
        {
            "idpInfoFromCustomer": {
                "idpType": "MicrosoftEntra",
                "clientId": "c",
                "clientSecret": "s",
                "usesPkce": False,
                "tenantId": "contoso/../evil",
            }
        },
        {"idpInfoFromCustomer.tenantId": "invalid_value"},
        id="Entra tenant with slash",
    ),
    pytest.param(
        {
            "idpInfoFromCustomer": {
                "idpType": "Generic",
                "clientId": "c",
                "clientSecret": "s",
                "usesPkce": False,
                "authUrl": "https://idp.example.net/authorize",
                "tokenUrl": "idp.example.net/token",
            }
        },
        {
            "idpInfoFromCustomer.tokenUrl": "invalid_url",
            "idpInfoFromCustomer.userinfoUrl": "required",
        },
        id="Generic with bad and missing URLs",
    ),
    pytest.param(
        {"emailDomainAllowlist": ["acme.com", "localhost", "-bad.com", "acme..com", 7]},
        {
            "emailDomainAllowlist[1]": "invalid_domain",
            "emailDomainAllowlist[2]": "invalid_domain",
            "emailDomainAllowlist[3]": "invalid_domain",
            "emailDomainAllowlist[4]": "invalid_type",
        },
        id="bad email domains",
    ),
    pytest.param(
        {"additionalRedirectUrls": "https://one.example.com"},
        {"additionalRedirectUrls": "invalid_type"},
        id="redirect URLs not a list",
    ),
    pytest.param(
        {"additionalScopes": ["groups", "two scopes"]},
        {"additionalScopes[1]": "invalid_value"},
        id="scope with space",
    ),
    pytest.param(
        {"scimMatchingDefinition": {"strategy": "ByMagic"}},
        {"scimMatchingDefinition.strategy": "invalid_value"},
        id="unknown SCIM strategy",
    ),
]


@pytest.mark.parametrize(("changes", "expected_fields"), CREATE_CASES)
async def test_create_rejects_invalid_fields(
    emulator: EmulatorServer,
    emulator_key: str,
    changes: dict[str, Any],
    expected_fields: dict[str, str],
) -> None:
    data = create_data(**changes)
    data = {key: value for key, value in data.items() if value is not None}

    status, body = await run_command(emulator.url, emulator_key, "CreateOidcClient", data)

    assert status == 400
    assert body["type"] == "InvalidFields"
    fields = {field["field"]: field["code"] for field in body["details"]["fields"]}
    assert fields == expected_fields
    assert emulator.clients() == []


async def test_create_accepts_valid_request(emulator: EmulatorServer, emulator_key: str) -> None:
    status, body = await run_command(emulator.url, emulator_key, "CreateOidcClient", create_data())

    assert status == 200
    assert body == {"clientId": "0oa-okta-client"}


async def test_patch_rejects_client_id(emulator: EmulatorServer, emulator_key: str) -> None:
    await run_command(emulator.url, emulator_key, "CreateOidcClient", create_data())
    patch = {
        "customerId": "acme-com-1a2b3c4d",
        "idpInfoFromCustomer": {"idpType": "Okta", "clientId": "0oa-other"},
    }

    status, body = await run_command(emulator.url, emulator_key, "PatchOidcClient", patch)

    assert status == 400
    assert body["type"] == "InvalidFields"
    assert body["details"]["fields"][0]["field"] == "idpInfoFromCustomer.clientId"
    assert body["details"]["fields"][0]["code"] == "immutable"
    assert emulator.clients()[0]["idpInfoFromCustomer"]["clientId"] == "0oa-okta-client"


async def test_patch_needs_idp_type(emulator: EmulatorServer, emulator_key: str) -> None:
    await run_command(emulator.url, emulator_key, "CreateOidcClient", create_data())
    patch = {"customerId": "acme-com-1a2b3c4d", "idpInfoFromCustomer": {"usesPkce": True}}

    status, body = await run_command(emulator.url, emulator_key, "PatchOidcClient", patch)

    assert status == 400
    assert body["details"]["fields"][0]["field"] == "idpInfoFromCustomer.idpType"


@pytest.mark.parametrize(
    ("command", "data", "expected_type"),
    [
        pytest.param("FetchOidcClient", {}, "UnexpectedError", id="fetch without identifier"),
        pytest.param(
            "DeleteOidcClient",
            {"customerId": "a", "oidcClientId": "b"},
            "UnexpectedError",
            id="delete with both identifiers",
        ),
        pytest.param(
            "InitiateOidcLogin", {"customerId": 5}, "UnexpectedError", id="login numeric ID"
        ),
        pytest.param("PatchOidcClient", {}, "InvalidFields", id="patch without identifier"),
    ],
)
async def test_client_identifier_required(
    emulator: EmulatorServer,
    emulator_key: str,
    command: str,
    data: dict[str, Any],
    expected_type: str,
) -> None:
    status, body = await run_command(emulator.url, emulator_key, command, data)

    assert status == 400
    assert body["type"] == expected_type


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([1, 2], id="JSON array"),
        pytest.param({"data": {}}, id="no command"),
        pytest.param({"command": "CreateSession", "data": {}}, id="unimplemented command"),
        pytest.param({"command": "Ping", "data": "x"}, id="data not an object"),
    ],
)
async def test_malformed_request_is_unexpected_error(
    emulator: EmulatorServer, emulator_key: str, body: Any
) -> None:
    status, answer = await post_json(
        f"{emulator.url}/run-command", body, {"Authorization": f"Bearer {emulator_key}"}
    )

    assert status == 400
    assert answer["type"] == "UnexpectedError"
    assert isinstance(answer["details"], str)


async def test_ping_without_data(emulator: EmulatorServer, emulator_key: str) -> None:
    status, body = await run_command(emulator.url, emulator_key, "Ping")

    assert status == 200
    assert isinstance(body["timestamp"], int)
