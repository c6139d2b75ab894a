"""Raw HTTP helpers and sample requests shared by the emulator tests."""

from __future__ import annotations

from typing import Any

import aiohttp
from propelauth_byo.generated.idp_info_from_customer import (
    IdpInfoFromCustomer,
    IdpInfoFromCustomerGeneric,
    IdpInfoFromCustomerMicrosoftEntra,
    IdpInfoFromCustomerOkta,
)

REDIRECT_URL = "https://experio.example.com/api/auth/sso/callback"
ENTRA_TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def entra_idp(client_id: str = "entra-client", secret: str = "entra-secret") -> IdpInfoFromCustomer:
    return IdpInfoFromCustomerMicrosoftEntra(
        client_id=client_id, client_secret=secret, uses_pkce=False, tenant_id=ENTRA_TENANT_ID
    )


def okta_idp(
    client_id: str = "0oa-okta-client", secret: str = "okta-secret"
) -> IdpInfoFromCustomer:
    return IdpInfoFromCustomerOkta(
        client_id=client_id, client_secret=secret, uses_pkce=True, sso_domain="acme.okta.com"
    )


def generic_idp(
    client_id: str = "generic-client", secret: str = "generic-secret"
) -> IdpInfoFromCustomer:
    return IdpInfoFromCustomerGeneric(
        client_id=client_id,
        client_secret=secret,
        uses_pkce=False,
        auth_url="https://idp.example.net/authorize?tenant=acme",
        token_url="https://idp.example.net/token",
        userinfo_url="https://idp.example.net/userinfo",
    )


def create_data(
    customer_id: str = "acme-com-1a2b3c4d",
    client_id: str = "0oa-okta-client",
    secret: str = "okta-secret",
    **overrides: Any,
) -> dict[str, Any]:
    """A valid ``CreateOidcClient`` data object for an Okta client."""
    data: dict[str, Any] = {
        "customerId": customer_id,
        "redirectUrl": REDIRECT_URL,
        "idpInfoFromCustomer": {
            "idpType": "Okta",
            "clientId": client_id,
            "clientSecret": secret,
            "usesPkce": False,
            "ssoDomain": "acme.okta.com",
        },
    }
    data.update(overrides)
    return data


async def post_json(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """POST ``body`` as JSON; return the status and the decoded JSON (or text) response."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers or {}) as response,
    ):
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def run_command(
    base_url: str, key: str | None, command: str, data: dict[str, Any] | None = None
) -> tuple[int, Any]:
    """Send one ``/run-command`` request with ``Bearer key`` (no header when None)."""
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    body: dict[str, Any] = {"command": command}
    if data is not None:
        body["data"] = data
    return await post_json(f"{base_url}/run-command", body, headers)


async def admin_request(
    base_url: str, token: str, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    """Send one admin request; return the status and the decoded JSON response."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            f"{base_url}/_emulator/{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
    ):
        return response.status, await response.json()
